//! The pest parser and the conversion of its parse tree into the AST.
//!
//! pest types never leave this file: callers get an [`super::ast::File`] or diagnostics whose expected
//! tokens are in plain words.

use super::ast::*;
use crate::diag::{Code, Diagnostic};
use crate::span::Span;
use pest::Parser as _;
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/resnet.pest"]
struct Grammar;

/// Parse a whole file. Every syntax error (E0001) is reported, each statement or item with one
/// re-parsed alone after the first ([`super::recover`]); integer literals that do not fit are
/// all reported (E0003).
pub fn parse_file(text: &str) -> Result<File, Vec<Diagnostic>> {
    let mut pairs = Grammar::parse(Rule::file, text).map_err(|e| {
        let first = syntax_error(text, e);
        let file = |slice: &str| {
            Grammar::parse(Rule::file, slice)
                .err()
                .map(|e| syntax_error(slice, e))
        };
        // Alone, a statement ends where the file would.
        let stmt = |slice: &str| {
            Grammar::parse(Rule::stmt_only, slice).err().map(|e| {
                let mut d = syntax_error(slice, e);
                d.message = d.message.replace("end of file", "the end of the statement");
                d
            })
        };
        let mut errors = super::recover::all_errors(text, first, file, stmt);
        // An error at the end of a file or statement (a zero-width span) points just after
        // its last code, not past the comments and blank lines that follow it.
        for d in &mut errors {
            if let Some(p) = &mut d.primary
                && p.span.start == p.span.end
            {
                let at = end_of_code(&text[..p.span.start as usize]);
                p.span = Span::new(at, at);
            }
        }
        errors.dedup_by_key(|d| d.primary.as_ref().map(|p| p.span));
        errors
    })?;
    let file_pair = pairs.next().expect("the file rule always yields one pair");
    let mut b = Builder {
        diags: Vec::new(),
        trivia: trivia_mask(text),
    };
    let mut file = File::default();
    for item in file_pair.into_inner() {
        match item.as_rule() {
            Rule::block_def => file.blocks.push(b.block(item)),
            Rule::network_def => file.networks.push(b.network(item)),
            _ => {}
        }
    }
    if b.diags.is_empty() {
        Ok(file)
    } else {
        Err(b.diags)
    }
}

/// Whether a pair is punctuation kept in the grammar only for error messages.
fn is_punct(p: &Pair<Rule>) -> bool {
    matches!(
        p.as_rule(),
        Rule::comma | Rule::rparen | Rule::rbracket | Rule::rbrace
    )
}

/// Which bytes of a text are whitespace or comment, computed once per file so that trimming
/// a pair's trailing trivia costs only the trivia (walking to a pair's last leaf instead made
/// long `else if` chains quadratic).
fn trivia_mask(text: &str) -> Vec<bool> {
    let mut mask = Vec::with_capacity(text.len());
    let mut in_comment = false;
    for b in text.bytes() {
        match b {
            b'\n' => in_comment = false,
            b'#' => in_comment = true,
            _ => {}
        }
        mask.push(in_comment || matches!(b, b' ' | b'\t' | b'\r' | b'\n'));
    }
    mask
}

/// The plain words for a rule in "expected ..." messages.
fn rule_name(rule: &Rule) -> &'static str {
    match rule {
        Rule::EOI => "end of file",
        Rule::block_def | Rule::kw_block => "`block`",
        Rule::network_def | Rule::kw_network => "`network`",
        Rule::param_list => "a parameter list",
        Rule::param => "a parameter",
        Rule::type_name | Rule::kw_int | Rule::kw_bool | Rule::kw_float => {
            "a type (`int`, `bool` or `float`)"
        }
        Rule::body => "`{`",
        Rule::input_stmt | Rule::kw_input => "`input`",
        Rule::output_stmt | Rule::kw_output => "`output`",
        Rule::let_stmt => "a statement",
        Rule::shape => "a shape such as `[N, 3, 224, 224]`",
        Rule::expr | Rule::or_expr | Rule::and_expr | Rule::not_expr | Rule::cmp_expr => {
            "an expression"
        }
        Rule::sum | Rule::product | Rule::unary | Rule::paren => "an expression",
        Rule::stage | Rule::label => "an op or block after `->`",
        Rule::seq | Rule::seq_item | Rule::seq_entry => "a sequence `[...]`",
        Rule::seq_if => "`if`",
        Rule::item_label => "a label",
        Rule::cmp_op => "an operator",
        Rule::add_op | Rule::mul_op | Rule::kw_and | Rule::kw_or => "an operator",
        Rule::neg => "`-`",
        Rule::if_expr | Rule::kw_if => "`if`",
        Rule::kw_else => "`else`",
        Rule::call => "a call",
        Rule::list => "a list `[...]`",
        Rule::arg | Rule::arg_name => "an argument",
        Rule::bool | Rule::kw_true | Rule::kw_false => "`true` or `false`",
        Rule::int => "an integer",
        Rule::float => "a number",
        Rule::name => "a name",
        Rule::keyword => "a keyword",
        Rule::kw_not => "`not`",
        Rule::file => "a block or network",
        Rule::comma => "`,`",
        Rule::rparen => "`)`",
        Rule::rbracket => "`]`",
        Rule::rbrace => "`}`",
        Rule::stmt => "a statement",
        Rule::dim => "a dimension",
        Rule::arrow => "an operator",
        Rule::stage_fn | Rule::atom => "an expression",
        Rule::WHITESPACE | Rule::COMMENT => "whitespace",
        Rule::stmt_only => "a statement",
    }
}

fn syntax_error(text: &str, e: pest::error::Error<Rule>) -> Diagnostic {
    let pos = match e.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let found = found_at(text, pos);
    let end = (pos + found.1).min(text.len());
    let message = match &e.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let mut words: Vec<&str> = positives.iter().map(rule_name).collect();
            words.sort_unstable();
            words.dedup();
            match words.len() {
                0 => format!("unexpected {}", found.0),
                1 => format!("expected {}, found {}", words[0], found.0),
                _ => {
                    let (last, rest) = words.split_last().expect("at least two");
                    format!("expected {} or {last}, found {}", rest.join(", "), found.0)
                }
            }
        }
        // pest's guard against deep recursion (an `else if` chain of hundreds of thousands).
        ErrorVariant::CustomError { message } if message.contains("stack limit") => {
            "expression nested too deep to parse".to_string()
        }
        ErrorVariant::CustomError { message } => message.clone(),
    };
    // A non-ASCII character near the error is the likely cause: name it, and point at it.
    if let Some((at, c)) = non_ascii_near(text, pos) {
        return Diagnostic::error(
            Code::SyntaxError,
            format!("unexpected non-ASCII character {}", describe_char(c)),
        )
        .with_primary(Span::new(at, at + c.len_utf8()), "here")
        .with_help(if c == '\u{FEFF}' {
            "save the file as UTF-8 without a byte-order mark"
        } else {
            "outside comments a .res file is ASCII: names are ASCII letters, digits and `_`; delete or replace this character"
        });
    }
    let mut d =
        Diagnostic::error(Code::SyntaxError, message).with_primary(Span::new(pos, end), "here");
    if let Some(help) = syntax_help(text, pos, &found.0) {
        d = d.with_help(help);
    } else if let ErrorVariant::ParsingError { positives, .. } = &e.variant
        && let Some(k) = misspelt_keyword(&text[pos..end], positives)
    {
        d = d.with_help(format!("did you mean `{k}`?"));
    }
    // A bracket still open where its line ends, or a brace where the text ends (not one a
    // missing comma left before its `)`, or an error inside a body that is closed).
    let rest_of_line = text[pos..].split('\n').next().unwrap_or("");
    let rest_of_line = rest_of_line.split('#').next().unwrap_or("");
    let rest_of_text = &text[pos..];
    if let ErrorVariant::ParsingError { positives, .. } = &e.variant {
        let brackets = [
            (Rule::rparen, '(', ')'),
            (Rule::rbracket, '[', ']'),
            (Rule::rbrace, '{', '}'),
        ];
        for (rule, open, close) in brackets {
            let rest = if open == '{' {
                rest_of_text
            } else {
                rest_of_line
            };
            if positives.contains(&rule)
                && !rest.contains(close)
                && let Some(at) = unclosed(&text[..pos], open, close)
            {
                d = d.with_secondary(
                    Span::new(at, at + 1),
                    format!("this `{open}` is not closed"),
                );
            }
        }
    }
    d
}

/// Where the code of `text` ends: after its last character that is neither whitespace nor
/// in a comment.
fn end_of_code(text: &str) -> usize {
    let mut end = 0;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let code = line.split('#').next().unwrap_or("").trim_end();
        if !code.is_empty() {
            end = at + code.len();
        }
        at += line.len();
    }
    end
}

/// The last `open` bracket of `text` that no bracket after it closes (comments skipped).
fn unclosed(text: &str, open: char, close: char) -> Option<usize> {
    let mut stack = Vec::new();
    let mut comment = false;
    for (i, c) in text.char_indices() {
        match c {
            '\n' => comment = false,
            '#' => comment = true,
            _ if comment => {}
            c if c == open => stack.push(i),
            c if c == close => {
                stack.pop();
            }
            _ => {}
        }
    }
    stack.pop()
}

/// The keyword the parser expected where `word` stands, if `word` is a likely misspelling of
/// it (`netwrok`, `inptu`, `ouput`).
fn misspelt_keyword(word: &str, expected: &[Rule]) -> Option<&'static str> {
    let keywords = |r: &Rule| -> &'static [&'static str] {
        match r {
            Rule::file => &["block", "network"],
            Rule::stmt | Rule::stmt_only => &["input", "output"],
            Rule::block_def | Rule::kw_block => &["block"],
            Rule::network_def | Rule::kw_network => &["network"],
            Rule::input_stmt | Rule::kw_input => &["input"],
            Rule::output_stmt | Rule::kw_output => &["output"],
            Rule::if_expr | Rule::kw_if | Rule::seq_if => &["if"],
            Rule::kw_else => &["else"],
            _ => &[],
        }
    };
    let is_word = !word.is_empty() && word.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if !is_word {
        return None;
    }
    crate::diag::suggest::closest(word, expected.iter().flat_map(keywords).copied())
}

/// A hint for the mistakes the grammar cannot name by itself.
fn syntax_help(text: &str, pos: usize, found: &str) -> Option<String> {
    let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let before = &text[line_start..pos];
    let words: Vec<&str> = before.split_whitespace().collect();
    // Parentheses opened and not closed before `pos` on this line: inside a call's arguments.
    let open = before.matches('(').count() > before.matches(')').count();
    // The name just before `pos`, if any.
    let trimmed = before.trim_end();
    let name = &trimmed[trimmed
        .char_indices()
        .rfind(|&(_, c)| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |(i, c)| i + c.len_utf8())..];
    // `1e-5`: an exponent needs a decimal point before it (`1.0e-5`).
    let digits = &trimmed[trimmed
        .char_indices()
        .rfind(|&(_, c)| !c.is_ascii_digit())
        .map_or(0, |(i, c)| i + c.len_utf8())..];
    if !digits.is_empty() && trimmed.len() == before.len() {
        let rest = &text[pos..];
        let exp_len = rest
            .strip_prefix(['e', 'E'])
            .map(|r| {
                let sign = usize::from(r.starts_with(['+', '-']));
                let n = r[sign..].bytes().take_while(u8::is_ascii_digit).count();
                if n > 0 { 1 + sign + n } else { 0 }
            })
            .unwrap_or(0);
        if exp_len > 0 {
            let exp = &rest[..exp_len];
            return Some(format!(
                "a number with an exponent has a decimal point: write `{digits}.0{exp}`"
            ));
        }
    }
    match found {
        // `network net(x: [...])`: a network's inputs are declared in its body.
        "`(`" if matches!(words[..], [.., "network", _]) => Some(
            "a network takes no parameters: declare its inputs in its body, as in `network net { input x: [N, 3, 224, 224] ... }`".into(),
        ),
        // `conv(8, k=3)`: named arguments take a colon.
        "`=`" if open && !name.is_empty() => Some(format!(
            "a named argument takes a colon, not `=`: `{name}: ...`"
        )),
        "`+`" | "`*`" | "`-`" | "`/`" if before.contains("->") => Some(
            "`->` binds loosest, so a pipeline ends at its last stage: to combine its result, put it in parentheses, `(x -> relu) + x`".into(),
        ),
        "`<`" | "`>`" | "`<=`" | "`>=`" | "`==`" | "`!=`" => {
            Some("comparisons do not chain: join them with `and`, as in `1 < c and c < 3`".into())
        }
        _ => None,
    }
}

/// A description of what stands at `pos` and its length in bytes.
fn found_at(text: &str, pos: usize) -> (String, usize) {
    let rest = text.get(pos..).unwrap_or("");
    let Some(c) = rest.chars().next() else {
        return ("end of file".into(), 0);
    };
    if c.is_ascii_alphanumeric() || c == '_' {
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let word = &rest[..len];
        let shown = if word.len() > 40 {
            format!("`{}...`", &word[..40])
        } else {
            format!("`{word}`")
        };
        return (shown, len);
    }
    let two = rest.get(..2).unwrap_or("");
    if ["->", "==", "!=", "<=", ">="].contains(&two) {
        return (format!("`{two}`"), 2);
    }
    let shown = if !c.is_ascii() {
        describe_char(c)
    } else if c.is_control() || c.is_whitespace() {
        format!("{:?}", c)
    } else {
        format!("`{c}`")
    };
    (shown, c.len_utf8())
}

/// A non-ASCII character in words, so that an invisible one is seen: "a zero-width space
/// (U+200B)", "`ö` (U+00F6)".
fn describe_char(c: char) -> String {
    let code = format!("U+{:04X}", c as u32);
    match c {
        '\u{FEFF}' => format!("{code} (a byte-order mark)"),
        '\u{200B}' => format!("{code} (a zero-width space)"),
        '\u{200C}' | '\u{200D}' | '\u{2060}' => format!("{code} (an invisible joiner)"),
        '\u{00A0}' | '\u{202F}' => format!("{code} (a no-break space)"),
        c if c.is_whitespace()
            || c.is_control()
            || matches!(c, '\u{200E}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2061}'..='\u{206F}') =>
        {
            format!("{code} (an invisible or format character)")
        }
        c => format!("`{c}` ({code})"),
    }
}

/// The first non-ASCII character outside comments on the lines around `pos` (the error's
/// line and the one before): pest reports where it gave up, which can be a word after the
/// real culprit (`größe` fails at `gr`... and a zero-width space is invisible).
fn non_ascii_near(text: &str, pos: usize) -> Option<(usize, char)> {
    let pos = pos.min(text.len());
    let line_start = text[..pos].rfind('\n').map_or(0, |i| i + 1);
    let from = text[..line_start.saturating_sub(1)]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let to = text[pos..].find('\n').map_or(text.len(), |i| pos + i);
    let mut at = from;
    for line in text[from..to].split_inclusive('\n') {
        let code = line.split('#').next().unwrap_or("");
        if let Some((i, c)) = code.char_indices().find(|(_, c)| !c.is_ascii()) {
            return Some((at + i, c));
        }
        at += line.len();
    }
    None
}

struct Builder {
    diags: Vec<Diagnostic>,
    /// [`trivia_mask`] of the text being built.
    trivia: Vec<bool>,
}

impl Builder {
    /// The span of a pair without the whitespace and comments pest lets trail inside it.
    fn span(&self, p: &Pair<Rule>) -> Span {
        let (start, mut end) = (p.as_span().start(), p.as_span().end());
        while end > start && self.trivia[end - 1] {
            end -= 1;
        }
        Span::new(start, end)
    }

    fn ident(&self, p: Pair<Rule>) -> Ident {
        Ident {
            name: p.as_str().to_string(),
            span: self.span(&p),
        }
    }

    fn int(&mut self, p: Pair<Rule>) -> u64 {
        let digits: String = p.as_str().chars().filter(|c| *c != '_').collect();
        digits.parse().unwrap_or_else(|_| {
            self.diags.push(
                Diagnostic::error(Code::IntegerTooLarge, "integer literal too large")
                    .with_primary(self.span(&p), "does not fit in 64 bits"),
            );
            0
        })
    }

    fn float(&mut self, p: Pair<Rule>) -> f64 {
        // The grammar only admits well-formed decimal numbers; overflow gives infinity,
        // which lowering rejects as out of range.
        p.as_str().parse().unwrap_or(f64::INFINITY)
    }

    fn block(&mut self, p: Pair<Rule>) -> BlockDef {
        let sp = self.span(&p);
        let mut name = None;
        let mut params = Vec::new();
        let mut body = Vec::new();
        for q in p.into_inner().filter(|q| !is_punct(q)) {
            match q.as_rule() {
                Rule::name => name = Some(self.ident(q)),
                Rule::param_list => {
                    params = q
                        .into_inner()
                        .filter(|r| !is_punct(r))
                        .map(|r| self.param(r))
                        .collect()
                }
                Rule::body => body = self.body(q),
                _ => {}
            }
        }
        BlockDef {
            name: name.expect("grammar: block has a name"),
            params,
            body,
            span: sp,
        }
    }

    fn network(&mut self, p: Pair<Rule>) -> NetworkDef {
        let sp = self.span(&p);
        let mut name = None;
        let mut body = Vec::new();
        for q in p.into_inner().filter(|q| !is_punct(q)) {
            match q.as_rule() {
                Rule::name => name = Some(self.ident(q)),
                Rule::body => body = self.body(q),
                _ => {}
            }
        }
        NetworkDef {
            name: name.expect("grammar: network has a name"),
            body,
            span: sp,
        }
    }

    fn param(&mut self, p: Pair<Rule>) -> Param {
        let sp = self.span(&p);
        let mut it = p.into_inner();
        let name = self.ident(it.next().expect("grammar: param name"));
        let ty = match it.next().expect("grammar: param type").as_str() {
            "int" => Type::Int,
            "bool" => Type::Bool,
            _ => Type::Float,
        };
        let default = it.next().map(|e| self.expr(e));
        Param {
            name,
            ty,
            default,
            span: sp,
        }
    }

    fn body(&mut self, p: Pair<Rule>) -> Vec<Stmt> {
        p.into_inner()
            .filter(|s| !is_punct(s))
            .map(|s| self.stmt(s))
            .collect()
    }

    fn stmt(&mut self, p: Pair<Rule>) -> Stmt {
        let sp = self.span(&p);
        match p.as_rule() {
            Rule::input_stmt => {
                let mut name = None;
                let mut shape = None;
                for q in p.into_inner().filter(|q| !is_punct(q)) {
                    match q.as_rule() {
                        Rule::name => name = Some(self.ident(q)),
                        Rule::shape => {
                            shape = Some(
                                q.into_inner()
                                    .filter(|d| !is_punct(d))
                                    .map(|d| self.dim(d))
                                    .collect(),
                            )
                        }
                        _ => {}
                    }
                }
                Stmt::Input(InputStmt {
                    name: name.expect("grammar: input name"),
                    shape,
                    span: sp,
                })
            }
            Rule::output_stmt => {
                let mut name = None;
                let mut value = None;
                for q in p.into_inner().filter(|q| !is_punct(q)) {
                    match q.as_rule() {
                        Rule::name => name = Some(self.ident(q)),
                        Rule::expr => value = Some(self.expr(q)),
                        _ => {}
                    }
                }
                Stmt::Output(OutputStmt {
                    name,
                    value: value.expect("grammar: output value"),
                    span: sp,
                })
            }
            _ => {
                let mut it = p.into_inner();
                let name = self.ident(it.next().expect("grammar: let name"));
                let value = self.expr(it.next().expect("grammar: let value"));
                Stmt::Let(LetStmt {
                    name,
                    value,
                    span: sp,
                })
            }
        }
    }

    fn dim(&mut self, p: Pair<Rule>) -> Dim {
        match p.as_rule() {
            Rule::int => {
                let sp = self.span(&p);
                Dim::Int(self.int(p), sp)
            }
            _ => Dim::Sym(self.ident(p)),
        }
    }

    fn expr(&mut self, p: Pair<Rule>) -> Expr {
        let sp = self.span(&p);
        match p.as_rule() {
            Rule::expr => {
                let mut it = p.into_inner();
                let head = self.expr(it.next().expect("grammar: pipe head"));
                let stages: Vec<Stage> = it.map(|s| self.stage(s)).collect();
                if stages.is_empty() {
                    return head;
                }
                Expr {
                    kind: ExprKind::Pipe {
                        head: Box::new(head),
                        stages,
                    },
                    span: sp,
                }
            }
            Rule::or_expr | Rule::and_expr | Rule::sum | Rule::product | Rule::cmp_expr => {
                self.chain(p)
            }
            Rule::not_expr | Rule::unary => {
                let mut ops = Vec::new();
                let mut operand = None;
                for q in p.into_inner().filter(|q| !is_punct(q)) {
                    match q.as_rule() {
                        Rule::kw_not => ops.push(UnOp::Not),
                        Rule::neg => ops.push(UnOp::Neg),
                        _ => operand = Some(self.expr(q)),
                    }
                }
                let operand = operand.expect("grammar: unary operand");
                if ops.is_empty() {
                    return operand;
                }
                Expr {
                    kind: ExprKind::Unary {
                        ops,
                        operand: Box::new(operand),
                    },
                    span: sp,
                }
            }
            Rule::paren => {
                let inner = self.expr(
                    p.into_inner()
                        .find(|q| !is_punct(q))
                        .expect("grammar: paren"),
                );
                Expr {
                    kind: inner.kind,
                    span: sp,
                }
            }
            Rule::if_expr => {
                let mut it = p.into_inner().filter(|q| {
                    !is_punct(q) && !matches!(q.as_rule(), Rule::kw_if | Rule::kw_else)
                });
                let cond = self.expr(it.next().expect("grammar: if cond"));
                let then = self.expr(it.next().expect("grammar: if then"));
                let otherwise = self.expr(it.next().expect("grammar: if else"));
                Expr {
                    kind: ExprKind::If {
                        cond: Box::new(cond),
                        then: Box::new(then),
                        otherwise: Box::new(otherwise),
                    },
                    span: sp,
                }
            }
            Rule::bool => Expr {
                kind: ExprKind::Bool(p.as_str() == "true"),
                span: sp,
            },
            Rule::int => Expr {
                kind: ExprKind::Int(self.int(p)),
                span: sp,
            },
            Rule::float => Expr {
                kind: ExprKind::Float(self.float(p)),
                span: sp,
            },
            Rule::call => Expr {
                kind: ExprKind::Call(self.call(p)),
                span: sp,
            },
            Rule::list => Expr {
                kind: ExprKind::List(
                    p.into_inner()
                        .filter(|q| !is_punct(q))
                        .map(|q| self.expr(q))
                        .collect(),
                ),
                span: sp,
            },
            Rule::name => Expr {
                kind: ExprKind::Name(p.as_str().to_string()),
                span: sp,
            },
            r => unreachable!("grammar: unexpected expression rule {r:?}"),
        }
    }

    /// A flat chain of one precedence level: operands interleaved with operator pairs.
    fn chain(&mut self, p: Pair<Rule>) -> Expr {
        let sp = self.span(&p);
        let mut it = p.into_inner();
        let first = self.expr(it.next().expect("grammar: chain operand"));
        let mut rest = Vec::new();
        while let Some(op) = it.next() {
            let op_span = self.span(&op);
            let bin = match op.as_str() {
                "+" => BinOp::Add,
                "-" => BinOp::Sub,
                "*" => BinOp::Mul,
                "/" => BinOp::Div,
                "%" => BinOp::Rem,
                "==" => BinOp::Eq,
                "!=" => BinOp::Ne,
                "<" => BinOp::Lt,
                "<=" => BinOp::Le,
                ">" => BinOp::Gt,
                ">=" => BinOp::Ge,
                "and" => BinOp::And,
                _ => BinOp::Or,
            };
            let rhs = self.expr(it.next().expect("grammar: chain rhs"));
            rest.push((bin, op_span, rhs));
        }
        if rest.is_empty() {
            return first;
        }
        Expr {
            kind: ExprKind::Chain {
                first: Box::new(first),
                rest,
            },
            span: sp,
        }
    }

    fn call(&mut self, p: Pair<Rule>) -> Call {
        let sp = self.span(&p);
        let mut it = p.into_inner().filter(|q| !is_punct(q));
        let name = self.ident(it.next().expect("grammar: call name"));
        let args = it
            .map(|a| {
                let asp = self.span(&a);
                let mut name = None;
                let mut value = None;
                for q in a.into_inner() {
                    match q.as_rule() {
                        Rule::arg_name => {
                            name = Some(self.ident(q.into_inner().next().expect("name")))
                        }
                        _ => value = Some(self.expr(q)),
                    }
                }
                Arg {
                    name,
                    value: value.expect("grammar: arg value"),
                    span: asp,
                }
            })
            .collect();
        Call {
            name,
            args,
            span: sp,
        }
    }

    fn stage(&mut self, p: Pair<Rule>) -> Stage {
        let sp = self.span(&p);
        let mut label = None;
        let mut func = None;
        for q in p.into_inner().filter(|q| !is_punct(q)) {
            match q.as_rule() {
                Rule::label => label = Some(self.ident(q.into_inner().next().expect("name"))),
                _ => func = Some(self.stage_fn(q)),
            }
        }
        Stage {
            label,
            func: func.expect("grammar: stage function"),
            span: sp,
        }
    }

    /// One item of a sequence; `when` is the condition of the `if { ... }` it is in.
    fn seq_item(&mut self, item: Pair<Rule>, when: Option<Expr>) -> SeqItem {
        let isp = self.span(&item);
        let mut it = item.into_inner().peekable();
        let label = it
            .next_if(|q| q.as_rule() == Rule::item_label)
            .map(|q| self.ident(q));
        let func = self.stage_fn(it.next().expect("grammar: seq item"));
        let repeat = it.next().map(|r| self.expr(r));
        SeqItem {
            label,
            func,
            repeat,
            when,
            span: isp,
        }
    }

    fn stage_fn(&mut self, p: Pair<Rule>) -> StageFn {
        let sp = self.span(&p);
        match p.as_rule() {
            Rule::call => StageFn::Call(self.call(p)),
            Rule::name => StageFn::Name(self.ident(p)),
            Rule::int => StageFn::Int(self.int(p), sp),
            Rule::float => StageFn::Float(self.float(p), sp),
            Rule::paren => StageFn::Paren(Box::new(self.expr(p))),
            _ => {
                let mut items = Vec::new();
                for entry in p.into_inner().filter(|q| !is_punct(q)) {
                    if entry.as_rule() == Rule::seq_if {
                        let mut it = entry
                            .into_inner()
                            .filter(|q| !is_punct(q) && q.as_rule() != Rule::kw_if);
                        let cond = self.expr(it.next().expect("grammar: seq if condition"));
                        for item in it {
                            items.push(self.seq_item(item, Some(cond.clone())));
                        }
                    } else {
                        items.push(self.seq_item(entry, None));
                    }
                }
                StageFn::Seq(items, sp)
            }
        }
    }
}
