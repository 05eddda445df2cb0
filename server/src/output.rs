//! Rendering results as a table, JSON or YAML (`-o`).

use clap::ValueEnum;
use serde::Serialize;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    #[default]
    Table,
    Json,
    Yaml,
}

/// Prints `value` as JSON or YAML; returns false for table output (the caller renders it).
pub fn print_structured<T: Serialize>(format: Format, value: &T) -> anyhow::Result<bool> {
    match format {
        Format::Json => {
            println!("{}", serde_json::to_string_pretty(value)?);
            Ok(true)
        }
        Format::Yaml => {
            print!("{}", serde_yaml::to_string(value)?);
            Ok(true)
        }
        Format::Table => Ok(false),
    }
}

/// A plain text table with left-aligned columns.
/// `items` as JSON or YAML, or as a table of `headers` with one `row` per item.
pub fn print_list<T: Serialize>(
    format: Format,
    items: &[T],
    headers: &[&str],
    row: impl Fn(&T) -> Vec<String>,
) -> anyhow::Result<()> {
    if !print_structured(format, &items)? {
        let rows: Vec<Vec<String>> = items.iter().map(row).collect();
        print!("{}", table(headers, &rows));
    }
    Ok(())
}

/// The names column of a certificate or request: its SANs, else its subject.
pub fn names_cell(sans: &[String], subject: &str) -> String {
    if sans.is_empty() { subject.to_owned() } else { sans.join(",") }
}

pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let parts: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect();
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    line(headers.to_vec(), &mut out);
    for row in rows {
        line(row.iter().map(|s| s.as_str()).collect(), &mut out);
    }
    out
}
