//! Log fields taken from a request are the caller's: control characters in them are escaped, so a name
//! or an error message cannot start a new log line or send escape sequences to a terminal.

use std::borrow::Cow;

/// `text` with every control character escaped (`\n`, `\u{1b}`); unchanged, and not copied, when it has
/// none.
pub fn escaped(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::escaped;

    #[test]
    fn control_characters_are_escaped_and_clean_text_is_borrowed() {
        assert!(matches!(escaped("web-1"), std::borrow::Cow::Borrowed("web-1")));
        assert_eq!(escaped("a\nb\u{1b}[31mc\r\t"), "a\\nb\\u{1b}[31mc\\r\\t");
        assert_eq!(escaped("ünï"), "ünï");
    }
}
