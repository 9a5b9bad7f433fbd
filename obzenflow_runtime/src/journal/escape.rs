//! Escaping names and messages read from disk before they reach a terminal.

/// `name` (read from disk) as it is safe to print: control characters are escaped (`\n`,
/// `\u{1b}`), so a name can neither break a line nor drive the terminal.
///
/// ```
/// use obzenflow_runtime::journal::inspect::escape_name;
///
/// assert_eq!(escape_name("parse"), "parse");
/// assert_eq!(escape_name("a\x1b[2Jb\n"), "a\\u{1b}[2Jb\\n");
/// ```
pub fn escape_name(name: &str) -> std::borrow::Cow<'_, str> {
    if !name.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(name);
    }
    let mut escaped = String::with_capacity(name.len() + 8);
    for c in name.chars() {
        if c.is_control() {
            escaped.extend(c.escape_default());
        } else {
            escaped.push(c);
        }
    }
    std::borrow::Cow::Owned(escaped)
}
