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
