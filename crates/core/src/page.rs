//! Cursors of paginated lists. A list is read newest first by a position that only grows
//! (a row's insertion number); a cursor carries the last position handed out, so the next
//! page starts after it however many rows arrive meanwhile. Clients must treat a cursor as
//! opaque: its text is the position behind a version tag, in base64url, and may change.

use crate::ValidationError;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

const TAG: &str = "p1.";
/// Longer than any cursor this module makes; anything longer is refused unread.
const MAX_LEN: usize = 64;

/// The cursor text for a page that ended at `position`.
pub fn encode_cursor(position: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("{TAG}{position}"))
}

/// The position a cursor made by [`encode_cursor`] carries; anything else is refused.
pub fn decode_cursor(raw: &str) -> Result<i64, ValidationError> {
    let invalid = || ValidationError::InvalidCursor(raw.chars().take(MAX_LEN).collect());
    if raw.len() > MAX_LEN {
        return Err(invalid());
    }
    let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| invalid())?;
    let text = std::str::from_utf8(&bytes).map_err(|_| invalid())?;
    let digits = text.strip_prefix(TAG).ok_or_else(invalid)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid());
    }
    match digits.parse::<i64>() {
        Ok(position) if position > 0 => Ok(position),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_hide_the_position() {
        for position in [1, 42, i64::MAX] {
            let cursor = encode_cursor(position);
            assert!(!cursor.contains(&position.to_string()), "{cursor}");
            assert_eq!(decode_cursor(&cursor), Ok(position));
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for raw in [
            "",
            "42",
            "!!",
            &URL_SAFE_NO_PAD.encode("p1."),
            &URL_SAFE_NO_PAD.encode("p1.-5"),
            &URL_SAFE_NO_PAD.encode("p1.0"),
            &URL_SAFE_NO_PAD.encode("p1.+5"),
            &URL_SAFE_NO_PAD.encode("p1.99999999999999999999"),
            &URL_SAFE_NO_PAD.encode("p2.5"),
            &"A".repeat(200),
        ] {
            assert!(decode_cursor(raw).is_err(), "{raw}");
        }
    }
}
