//! Client-supplied text made safe to write into a log line or an error message: control
//! characters (newlines, carriage returns, escape sequences, NUL...) and other invisible
//! or line-breaking characters are escaped, so a value cannot forge a log line or hide in
//! one, and long values are cut, so a client cannot fill a disk through the log.
//!
//! The one helper for this: the binary's text log formatter runs every field of every
//! event through [`write_controls_escaped`] (so no protocol can forget), and protocol
//! code uses [`LogSafe`] / [`escape`] where it builds a message or a log value from text
//! a client chose.

use std::fmt;

/// Characters a logged value keeps by default; the rest is summarised.
pub const DEFAULT_MAX_CHARS: usize = 256;

/// Whether `c` must be escaped: controls (C0, DEL, C1), Unicode line and paragraph
/// separators, and bidirectional overrides that reorder what a reader sees.
fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Writes `s` with control characters escaped (`\n`, `\r`, `\t`, `\\u{1b}`...) and
/// backslashes doubled, keeping at most `max_chars` characters and saying how many
/// bytes were left out.
pub fn write_escaped(out: &mut impl fmt::Write, s: &str, max_chars: usize) -> fmt::Result {
    write_with(out, s, max_chars, true)
}

/// [`write_escaped`] for text that is already partly escaped (a `Debug` rendering):
/// control characters are escaped, backslashes are left as they are.
pub fn write_controls_escaped(out: &mut impl fmt::Write, s: &str, max_chars: usize) -> fmt::Result {
    write_with(out, s, max_chars, false)
}

fn write_with(out: &mut impl fmt::Write, s: &str, max_chars: usize, double_backslashes: bool) -> fmt::Result {
    for (n, (i, c)) in s.char_indices().enumerate() {
        if n == max_chars {
            return write!(out, "…(+{} bytes)", s.len() - i);
        }
        match c {
            '\\' if double_backslashes => out.write_str("\\\\")?,
            '\n' => out.write_str("\\n")?,
            '\r' => out.write_str("\\r")?,
            '\t' => out.write_str("\\t")?,
            c if needs_escape(c) => write!(out, "\\u{{{:x}}}", c as u32)?,
            c => out.write_char(c)?,
        }
    }
    Ok(())
}

/// `s` escaped and cut to `max_chars` characters (see [`write_escaped`]).
pub fn escape(s: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max_chars * 2));
    let _ = write_escaped(&mut out, s, max_chars);
    out
}

/// Whether `s` would be changed by [`escape`] with no length limit.
pub fn is_clean(s: &str) -> bool {
    !s.chars().any(|c| c == '\\' || needs_escape(c))
}

/// Displays a client-supplied string escaped and cut to [`DEFAULT_MAX_CHARS`].
#[derive(Clone, Copy)]
pub struct LogSafe<'a>(pub &'a str);

impl fmt::Display for LogSafe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_escaped(f, self.0, DEFAULT_MAX_CHARS)
    }
}

impl fmt::Debug for LogSafe<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

/// What a client is told of a server-side failure: `public` (e.g. "internal error") and
/// a fresh request id; the detail (store or signing errors, internal names) goes to the
/// log line that carries the same id.
pub fn hide(protocol: &str, public: &str, detail: &dyn fmt::Display) -> String {
    let id = incident_id();
    tracing::error!(request_id = %id, detail = %detail, "{protocol} request failed: {public}");
    format!("{public} (request id {id})")
}

/// A fresh id for one failed request: the client is told only "internal error" and this
/// id, the log line carries the id and the detail.
pub fn incident_id() -> String {
    let mut bytes = [0u8; 8];
    if ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes).is_err() {
        return "unknown".into();
    }
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_failures_name_a_request_id_not_the_detail() {
        let told = hide("TEST", "internal error", &"state store: disk I/O error at /var/lib/x");
        assert!(told.starts_with("internal error (request id "), "{told}");
        assert!(!told.contains("disk") && !told.contains("/var/lib"), "{told}");
        assert_ne!(told, hide("TEST", "internal error", &"same"), "every failure gets its own id");
    }

    #[test]
    fn escapes_controls_and_cuts_long_values() {
        assert_eq!(escape("plain name-1.example", 64), "plain name-1.example");
        assert_eq!(
            escape("dev\n2026-01-01T00:00:00Z  INFO forged line", 64),
            "dev\\n2026-01-01T00:00:00Z  INFO forged line"
        );
        assert_eq!(escape("a\r\tb\u{1b}[31mred\u{0}", 64), "a\\r\\tb\\u{1b}[31mred\\u{0}");
        assert_eq!(escape("a\\nb", 64), "a\\\\nb", "a literal backslash-n stays distinguishable from a newline");
        assert_eq!(escape("x\u{2028}y\u{202e}z\u{85}", 64), "x\\u{2028}y\\u{202e}z\\u{85}");
        assert_eq!(escape("naïve ☃", 64), "naïve ☃");
        let long = "a".repeat(196_608);
        let cut = escape(&long, 8);
        assert_eq!(cut, format!("aaaaaaaa…(+{} bytes)", 196_600));
        assert_eq!(format!("{}", LogSafe("x\ny")), "x\\ny");
        assert_eq!(format!("{:?}", LogSafe("x\ny")), "\"x\\ny\"");
        assert!(is_clean("ok") && !is_clean("n\no") && !is_clean("a\\b"));
    }
}
