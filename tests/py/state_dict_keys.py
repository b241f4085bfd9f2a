"""The state_dict keys of torchvision models, for resnetc's key tests.

Usage: state_dict_keys.py MODEL [MODEL ...]. Prints a JSON object: model name -> its keys in
state_dict order, without `num_batches_tracked` (resnetc's batchnorm has no such buffer).
Models are built without weights (nothing is downloaded).
"""

import json
import sys

import torchvision

keys = {}
for name in sys.argv[1:]:
    model = getattr(torchvision.models, name)(weights=None)
    keys[name] = [k for k in model.state_dict() if not k.endswith("num_batches_tracked")]
print(json.dumps(keys))
