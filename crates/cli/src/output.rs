//! Printing results: one JSON object under `--json`, short text otherwise.

use serde::Serialize;

/// Prints `value` as one line of JSON when `json` is set, else the text `text` builds.
pub fn emit<T: Serialize>(
    json: bool,
    value: &T,
    text: impl FnOnce() -> String,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string(value)?);
    } else {
        println!("{}", text());
    }
    Ok(())
}

/// The reminder printed under every secret shown in text form.
pub const SHOWN_ONCE: &str =
    "Store it now: Gatehouse keeps only a digest and cannot show it again.";

/// Rows under a header line, each column padded to its widest cell; `empty` when there are
/// no rows.
pub fn table(header: &[&str], rows: &[Vec<String>], empty: &str) -> String {
    if rows.is_empty() {
        return empty.to_owned();
    }
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (i, (cell, width)) in cells.zip(&widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            out.push_str(cell);
            if i + 1 < widths.len() {
                out.extend(std::iter::repeat_n(' ', width - cell.chars().count()));
            }
        }
        out.trim_end().to_owned()
    };
    let mut lines = vec![line(&mut header.iter().copied())];
    for row in rows {
        lines.push(line(&mut row.iter().map(String::as_str)));
    }
    lines.join("\n")
}

/// A time for text output, or `-` for none.
pub fn when(at: Option<gatehouse_core::Timestamp>) -> String {
    at.map_or_else(|| "-".to_owned(), |t| t.to_rfc3339())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_columns_to_the_widest_cell() {
        let rows = vec![
            vec!["a".to_owned(), "long value".to_owned(), "x".to_owned()],
            vec!["bbbb".to_owned(), "v".to_owned(), String::new()],
        ];
        assert_eq!(
            table(&["ID", "NAME", "Z"], &rows, "none"),
            "ID    NAME        Z\na     long value  x\nbbbb  v"
        );
        assert_eq!(table(&["ID"], &[], "No rows."), "No rows.");
    }
}
