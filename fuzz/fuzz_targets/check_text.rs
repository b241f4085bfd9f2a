//! `check` on arbitrary text: parse, lower, infer every network, verify fixes, summarize and
//! render the diagnostics must never panic, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resnetc::span::Source;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let source = Source::new("fuzz.res", text);
    let checked = resnetc::check_file(&source, None);
    for network in &checked.networks {
        if let Some(summary) = network.summary() {
            let _ = summary.to_table();
        }
    }
    let _ = resnetc::cli::check::render_plain(&source, &checked, resnetc::cli::Format::Short);
});
