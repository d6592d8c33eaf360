//! Body-based routing: the top-level `model` string of a JSON request body, found by a
//! streaming scanner that is fed the body piece by piece (memory buffers, then temp-file reads)
//! and stops as soon as the answer is known. Nothing after the model is parsed or validated,
//! and nested values are skipped without being decoded, so the cost is one pass over the
//! bytes before the model and no allocation beyond the model itself.

/// The header BBR sets, as the Gateway API Inference Extension's BBR does.
pub const DEFAULT_MODEL_HEADER: &str = "x-gateway-model-name";

/// Longest model name accepted as a header value.
pub const MAX_MODEL_LEN: usize = 1024;

/// What the scan concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanOutcome {
    /// The top-level `model` is a string usable as a header value.
    Model(String),
    /// The request has no body.
    NoBody,
    /// A JSON object without a top-level `model` (or whose scan ended at its closing brace).
    NoModel,
    /// Not a JSON object (or truncated before the model was found); byte offset of the problem.
    NotJson(u64),
    /// `model` is present but not a string (number, null, object, ...).
    NotString,
    /// `model` is a string that cannot be a header value (control characters, too long, empty).
    BadModel(&'static str),
    /// The model was not within the first `limit` bytes of a larger body.
    TooLarge,
}

impl ScanOutcome {
    /// Short name for `$epp_bbr_status` and logs.
    pub fn status(&self) -> &'static str {
        match self {
            Self::Model(_) => "ok",
            Self::NoBody => "no_body",
            Self::NoModel => "no_model",
            Self::NotJson(_) => "not_json",
            Self::NotString => "not_string",
            Self::BadModel(_) => "bad_model",
            Self::TooLarge => "too_large",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    /// Before the opening brace (whitespace and a UTF-8 BOM allowed).
    Start,
    /// After `{`: a key or `}`.
    KeyOrEnd,
    /// After `,`: a key.
    Key,
    /// Inside a key string.
    InKey,
    /// After a key: `:`.
    Colon,
    /// Before a value.
    Value,
    /// Inside a skipped string value.
    SkipString,
    /// Inside a skipped object/array (depth > 0), possibly inside a string there.
    SkipNested,
    /// Inside a skipped scalar (number, true, false, null).
    SkipScalar,
    /// After a value: `,` or `}`.
    AfterValue,
    /// Inside the model string.
    InModel,
}

/// Escape decoding state inside a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Esc {
    None,
    Backslash,
    /// \uXXXX: digits read so far and the value.
    Unicode(u8, u32),
}

pub struct ModelScanner {
    st: St,
    esc: Esc,
    /// Pending high surrogate of a \uXXXX pair.
    high: Option<u32>,
    /// Decoded key (capped: a key longer than "model" cannot be it).
    key: Vec<u8>,
    key_long: bool,
    /// Decoded model string.
    val: Vec<u8>,
    /// Inside a string while skipping nested values.
    nested_str: bool,
    nested_esc: bool,
    depth: u32,
    offset: u64,
    limit: u64,
    done: Option<ScanOutcome>,
}

fn ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

fn push_char(out: &mut Vec<u8>, c: u32) {
    let ch = char::from_u32(c).unwrap_or('\u{fffd}');
    let mut buf = [0u8; 4];
    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
}

impl ModelScanner {
    /// `limit`: how many body bytes at most are scanned (the BBR body limit).
    pub fn new(limit: u64) -> Self {
        Self {
            st: St::Start,
            esc: Esc::None,
            high: None,
            key: Vec::with_capacity(8),
            key_long: false,
            val: Vec::new(),
            nested_str: false,
            nested_esc: false,
            depth: 0,
            offset: 0,
            limit,
            done: None,
        }
    }

    /// The outcome once known; further input is then ignored.
    pub fn outcome(&self) -> Option<&ScanOutcome> {
        self.done.as_ref()
    }

    /// Bytes consumed so far.
    pub fn consumed(&self) -> u64 {
        self.offset
    }

    /// Feeds the next piece of the body; returns true once the outcome is known.
    pub fn feed(&mut self, data: &[u8]) -> bool {
        if self.done.is_some() {
            return true;
        }
        let room = self.limit.saturating_sub(self.offset);
        let over = (data.len() as u64) > room;
        let data = if over { &data[..room as usize] } else { data };
        let base = self.offset;
        let mut i = 0usize;
        while i < data.len() {
            // The bulk of a chat body is string content before the model: jump to the next
            // quote or backslash instead of stepping byte by byte.
            let in_skipped_string = (self.st == St::SkipString && self.esc == Esc::None)
                || (self.st == St::SkipNested && self.nested_str && !self.nested_esc);
            if in_skipped_string {
                match memchr::memchr2(b'"', b'\\', &data[i..]) {
                    Some(k) => i += k,
                    None => break,
                }
            }
            self.offset = base + i as u64;
            self.step(data[i]);
            i += 1;
            if self.done.is_some() {
                self.offset = base + i as u64;
                return true;
            }
        }
        self.offset = base + data.len() as u64;
        if over {
            self.done = Some(ScanOutcome::TooLarge);
            return true;
        }
        false
    }

    /// The body has ended: the outcome (total body size given, to tell an empty body apart).
    pub fn finish(mut self) -> ScanOutcome {
        if let Some(d) = self.done.take() {
            return d;
        }
        match self.st {
            St::Start if self.offset == 0 => ScanOutcome::NoBody,
            // A number cannot end the document before the closing brace: truncated either way.
            _ => ScanOutcome::NotJson(self.offset),
        }
    }

    fn fail(&mut self) {
        self.done = Some(ScanOutcome::NotJson(self.offset));
    }

    /// One byte of a string (key or model): decodes escapes into `out`; true at the closing quote.
    fn string_byte(&mut self, b: u8, into_key: bool) -> Result<bool, ()> {
        let emit = |s: &mut Self, c: u32| {
            if into_key {
                if s.key.len() < 8 {
                    push_char(&mut s.key, c);
                } else {
                    s.key_long = true;
                }
            } else if s.val.len() <= MAX_MODEL_LEN {
                push_char(&mut s.val, c);
            }
        };
        match self.esc {
            Esc::None => match b {
                b'"' => {
                    if self.high.take().is_some() {
                        emit(self, 0xfffd);
                    }
                    return Ok(true);
                }
                b'\\' => self.esc = Esc::Backslash,
                0..=0x1f => return Err(()),
                _ => {
                    if self.high.take().is_some() {
                        emit(self, 0xfffd);
                    }
                    // Raw bytes (UTF-8 or not) are kept; validity is checked at the end.
                    if into_key {
                        if self.key.len() < 8 {
                            self.key.push(b);
                        } else {
                            self.key_long = true;
                        }
                    } else if self.val.len() <= MAX_MODEL_LEN {
                        self.val.push(b);
                    }
                }
            },
            Esc::Backslash => {
                self.esc = Esc::None;
                let c = match b {
                    b'"' => b'"',
                    b'\\' => b'\\',
                    b'/' => b'/',
                    b'b' => 8,
                    b'f' => 12,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'u' => {
                        self.esc = Esc::Unicode(0, 0);
                        return Ok(false);
                    }
                    _ => return Err(()),
                };
                if self.high.take().is_some() {
                    emit(self, 0xfffd);
                }
                emit(self, c as u32);
            }
            Esc::Unicode(n, v) => {
                let d = (b as char).to_digit(16).ok_or(())?;
                let v = v * 16 + d;
                if n < 3 {
                    self.esc = Esc::Unicode(n + 1, v);
                    return Ok(false);
                }
                self.esc = Esc::None;
                match (self.high.take(), v) {
                    (None, 0xd800..=0xdbff) => self.high = Some(v),
                    (Some(h), 0xdc00..=0xdfff) => emit(self, 0x10000 + ((h - 0xd800) << 10) + (v - 0xdc00)),
                    (Some(_), 0xd800..=0xdbff) => {
                        emit(self, 0xfffd);
                        self.high = Some(v);
                    }
                    (Some(_), _) => {
                        emit(self, 0xfffd);
                        emit(self, v);
                    }
                    (None, _) => emit(self, v),
                }
            }
        }
        Ok(false)
    }

    fn step(&mut self, b: u8) {
        match self.st {
            St::Start => {
                // UTF-8 BOM bytes are tolerated before the document.
                if ws(b) || (self.offset < 3 && matches!(b, 0xef | 0xbb | 0xbf)) {
                } else if b == b'{' {
                    self.st = St::KeyOrEnd;
                } else {
                    self.fail();
                }
            }
            St::KeyOrEnd | St::Key => {
                if ws(b) {
                } else if b == b'"' {
                    self.key.clear();
                    self.key_long = false;
                    self.st = St::InKey;
                } else if b == b'}' && self.st == St::KeyOrEnd {
                    self.done = Some(ScanOutcome::NoModel);
                } else {
                    self.fail();
                }
            }
            St::InKey => match self.string_byte(b, true) {
                Ok(true) => self.st = St::Colon,
                Ok(false) => {}
                Err(()) => self.fail(),
            },
            St::Colon => {
                if ws(b) {
                } else if b == b':' {
                    self.st = St::Value;
                } else {
                    self.fail();
                }
            }
            St::Value => {
                if ws(b) {
                    return;
                }
                let is_model = !self.key_long && self.key == b"model";
                if is_model {
                    if b == b'"' {
                        self.val.clear();
                        self.st = St::InModel;
                    } else {
                        self.done = Some(ScanOutcome::NotString);
                    }
                    return;
                }
                match b {
                    b'"' => {
                        self.esc = Esc::None;
                        self.st = St::SkipString;
                    }
                    b'{' | b'[' => {
                        self.depth = 1;
                        self.nested_str = false;
                        self.nested_esc = false;
                        self.st = St::SkipNested;
                    }
                    b'-' | b'0'..=b'9' | b't' | b'f' | b'n' => self.st = St::SkipScalar,
                    _ => self.fail(),
                }
            }
            // Skipped strings are not validated beyond their quoting (the fast path jumps over them).
            St::SkipString => {
                if self.esc == Esc::Backslash {
                    self.esc = Esc::None;
                } else if b == b'\\' {
                    self.esc = Esc::Backslash;
                } else if b == b'"' {
                    self.st = St::AfterValue;
                }
            }
            St::SkipNested => {
                if self.nested_str {
                    if self.nested_esc {
                        self.nested_esc = false;
                    } else if b == b'\\' {
                        self.nested_esc = true;
                    } else if b == b'"' {
                        self.nested_str = false;
                    }
                    return;
                }
                match b {
                    b'"' => self.nested_str = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => {
                        self.depth -= 1;
                        if self.depth == 0 {
                            self.st = St::AfterValue;
                        }
                    }
                    _ => {}
                }
            }
            St::SkipScalar => {
                if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'.') {
                } else {
                    self.st = St::AfterValue;
                    self.step(b);
                }
            }
            St::AfterValue => {
                if ws(b) {
                } else if b == b',' {
                    self.st = St::Key;
                } else if b == b'}' {
                    self.done = Some(ScanOutcome::NoModel);
                } else {
                    self.fail();
                }
            }
            St::InModel => match self.string_byte(b, false) {
                Ok(true) => self.done = Some(self.model_outcome()),
                Ok(false) => {}
                Err(()) => self.fail(),
            },
        }
    }

    fn model_outcome(&mut self) -> ScanOutcome {
        let v = std::mem::take(&mut self.val);
        if v.is_empty() {
            return ScanOutcome::BadModel("empty");
        }
        if v.len() > MAX_MODEL_LEN {
            return ScanOutcome::BadModel("longer than 1024 bytes");
        }
        if v.iter().any(|&c| c < 0x20 || c == 0x7f) {
            return ScanOutcome::BadModel("control characters");
        }
        match String::from_utf8(v) {
            Ok(s) => ScanOutcome::Model(s),
            Err(_) => ScanOutcome::BadModel("not UTF-8"),
        }
    }
}

/// Scans a whole body held in memory (tests, node-side parity checks).
pub fn scan(body: &[u8], limit: u64) -> ScanOutcome {
    let mut s = ModelScanner::new(limit);
    s.feed(body);
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(s: &str) -> ScanOutcome {
        scan(s.as_bytes(), u64::MAX)
    }

    #[test]
    fn finds_the_top_level_model() {
        assert_eq!(m(r#"{"model":"llama-3"}"#), ScanOutcome::Model("llama-3".into()));
        assert_eq!(m(" \n{ \"prompt\" : \"x\", \"model\" :\t\"a/b:c\" , \"n\": 1}"), ScanOutcome::Model("a/b:c".into()));
    }

    #[test]
    fn skips_nested_models_and_values_of_every_kind() {
        let body = r#"{"messages":[{"role":"user","content":"{\"model\":\"evil\"} ]}"}],"meta":{"model":"nested"},"n":-1.5e3,"t":true,"z":null,"s":"\\\"","model":"top"}"#;
        assert_eq!(m(body), ScanOutcome::Model("top".into()));
    }

    #[test]
    fn decodes_escapes_in_keys_and_the_model() {
        assert_eq!(m(r#"{"mod\u0065l":"a\u00e9\ud83d\ude00\/b"}"#), ScanOutcome::Model("aé😀/b".into()));
    }

    #[test]
    fn stops_at_the_model_and_ignores_what_follows() {
        assert_eq!(m(r#"{"model":"x", this is not json"#), ScanOutcome::Model("x".into()));
        let mut s = ModelScanner::new(u64::MAX);
        assert!(s.feed(br#"{"model":"x""#));
        assert_eq!(s.consumed(), 12);
    }

    #[test]
    fn works_across_any_split_of_the_input() {
        let body = br#"{"a":{"b":["\"}",1]},"model":"m\u00e9-1","c":2}"#;
        for i in 0..body.len() {
            for j in i..body.len() {
                let mut s = ModelScanner::new(u64::MAX);
                s.feed(&body[..i]);
                s.feed(&body[i..j]);
                s.feed(&body[j..]);
                assert_eq!(s.finish(), ScanOutcome::Model("mé-1".into()), "split at {i},{j}");
            }
        }
    }

    #[test]
    fn outcomes_without_a_usable_model() {
        assert_eq!(m(""), ScanOutcome::NoBody);
        assert_eq!(m(r#"{"prompt":"x"}"#), ScanOutcome::NoModel);
        assert_eq!(m("{}"), ScanOutcome::NoModel);
        assert_eq!(m(r#"{"model":42}"#), ScanOutcome::NotString);
        assert_eq!(m(r#"{"model":null}"#), ScanOutcome::NotString);
        assert_eq!(m(r#"{"model":{"name":"x"}}"#), ScanOutcome::NotString);
        assert_eq!(m(r#"{"model":""}"#), ScanOutcome::BadModel("empty"));
        assert_eq!(m(r#"{"model":"a\nb"}"#), ScanOutcome::BadModel("control characters"));
        assert!(matches!(m("not json"), ScanOutcome::NotJson(0)));
        assert!(matches!(m(r#"["model","x"]"#), ScanOutcome::NotJson(0)));
        assert!(matches!(m(r#"{"prompt":"x""#), ScanOutcome::NotJson(_)));
        assert!(matches!(m(r#"{"model":"unterminated"#), ScanOutcome::NotJson(_)));
        // A raw control character in a key or the model is not JSON; in skipped values it is not checked.
        assert!(matches!(m("{\"a\nb\":1}"), ScanOutcome::NotJson(_)));
        assert_eq!(m("{\"a\":\"raw\ncontrol\",\"model\":\"m\"}"), ScanOutcome::Model("m".into()));
        let long = format!(r#"{{"model":"{}"}}"#, "x".repeat(MAX_MODEL_LEN + 1));
        assert_eq!(m(&long), ScanOutcome::BadModel("longer than 1024 bytes"));
    }

    #[test]
    fn the_limit_bounds_the_bytes_scanned() {
        let body = format!(r#"{{"prompt":"{}","model":"late"}}"#, "p".repeat(1000));
        assert_eq!(scan(body.as_bytes(), 100), ScanOutcome::TooLarge);
        assert_eq!(scan(body.as_bytes(), body.len() as u64), ScanOutcome::Model("late".into()));
        // The limit holds inside a skipped string too (the fast path), and across pieces.
        let mut sc = ModelScanner::new(100);
        assert!(!sc.feed(&body.as_bytes()[..60]));
        assert!(sc.feed(&body.as_bytes()[60..]));
        assert_eq!(sc.finish(), ScanOutcome::TooLarge);
        // The model early in a body larger than the limit is still found.
        let early = format!(r#"{{"model":"early","prompt":"{}"}}"#, "p".repeat(1000));
        assert_eq!(scan(early.as_bytes(), 100), ScanOutcome::Model("early".into()));
    }
}
