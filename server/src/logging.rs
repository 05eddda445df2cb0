//! The process log: text or JSON on standard error, audit events as JSON lines.
//!
//! Text fields go through [`pkiplane_core::logsafe`]: control characters in any value
//! (a username, an identifier, an error quoting a client's input) are escaped and each
//! value is cut to [`MAX_FIELD_CHARS`], so no client can forge a line or flood the log,
//! whichever protocol carried its text. JSON output is escaped by construction.

use std::fmt;

use tracing::field::Field;
use tracing_subscriber::fmt::format::Writer;

/// Characters of one field value kept in a text log line.
pub const MAX_FIELD_CHARS: usize = 4096;

/// Writes one field of a text log line: `name=value`, the message without its name.
fn write_field(w: &mut impl fmt::Write, field: &Field, value: &dyn fmt::Debug) -> fmt::Result {
    let name = field.name();
    if name != "message" {
        write!(w, "{}=", name.trim_start_matches("r#"))?;
    }
    pkiplane_core::logsafe::write_controls_escaped(w, &format!("{value:?}"), MAX_FIELD_CHARS)
}

/// Installs the subscriber.
pub fn init(json: bool) {
    use tracing_subscriber::field::MakeExt;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer, filter::filter_fn, fmt};

    let is_audit = |m: &tracing::Metadata<'_>| m.target() == pkiplane_core::audit::TARGET;
    let filter = EnvFilter::try_from_env("PKIPLANE_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fields = fmt::format::debug_fn(|w: &mut Writer<'_>, field: &Field, value: &dyn std::fmt::Debug| {
        write_field(w, field, value)
    })
    .delimited(" ");
    let main = if json {
        fmt::layer().json().flatten_event(true).with_writer(std::io::stderr).boxed()
    } else {
        fmt::layer().with_target(false).with_ansi(ansi).fmt_fields(fields).with_writer(std::io::stderr).boxed()
    }
    .with_filter(filter_fn(move |m| !is_audit(m)))
    .with_filter(filter);
    // Audit events are always JSON lines: to PKIPLANE_AUDIT_LOG when set, else stderr.
    let audit_file = std::env::var_os("PKIPLANE_AUDIT_LOG").and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&p)
            .map_err(|e| eprintln!("warning: cannot open PKIPLANE_AUDIT_LOG {}: {e}", p.to_string_lossy()))
            .ok()
    });
    let audit = match audit_file {
        Some(f) => fmt::layer().json().flatten_event(true).with_writer(std::sync::Mutex::new(f)).boxed(),
        None => fmt::layer().json().flatten_event(true).with_writer(std::io::stderr).boxed(),
    }
    .with_filter(filter_fn(is_audit));
    tracing_subscriber::registry().with(main).with(audit).init();
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing_subscriber::field::MakeExt;
    use tracing_subscriber::fmt::MakeWriter;
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Captured;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    #[test]
    fn client_values_cannot_forge_lines_or_flood_the_log() {
        let out = Captured::default();
        let fields = tracing_subscriber::fmt::format::debug_fn(|w: &mut Writer<'_>, f: &Field, v: &dyn fmt::Debug| {
            write_field(w, f, v)
        })
        .delimited(" ");
        let layer = tracing_subscriber::fmt::layer().with_ansi(false).fmt_fields(fields).with_writer(out.clone());
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            let user = "dev\n2026-01-01T00:00:00Z  INFO pkiplane is ready\r\u{1b}[2J";
            tracing::warn!(user = %user, detail = ?user, "EST Basic authentication failed: {user}");
            tracing::warn!(error = %"x".repeat(200_000), "long");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "one line per event: {text}");
        assert!(lines[0].contains("user=dev\\n2026-01-01T00:00:00Z  INFO pkiplane is ready\\r\\u{1b}[2J"), "{text}");
        assert!(!text.contains('\u{1b}') && !text.contains('\r'), "{text:?}");
        assert!(lines[1].len() < MAX_FIELD_CHARS + 200 && lines[1].contains("…(+195904 bytes)"), "{}", lines[1].len());
    }
}
