//! PostgreSQL's text forms the engine reads and writes: array literals (masked element by
//! element) and COPY's text format.

/// Rewrite every element of an array literal (`{a,"b c",NULL}`, nested for more dimensions,
/// possibly with a `[1:3]=` prefix) with `f`; NULL elements stay NULL. The result keeps the
/// structure; every non-NULL element is written quoted.
pub fn map_array(
    literal: &str,
    mut f: impl FnMut(&str, &mut String) -> Result<Option<()>, String>,
) -> Result<String, String> {
    let bad = || "not an array literal".to_string();
    let mut out = String::with_capacity(literal.len() + 8);
    let mut chars = literal.char_indices().peekable();
    // Dimension decoration: copied as is.
    if literal.starts_with('[') {
        let eq = literal.find('=').ok_or_else(bad)?;
        out.push_str(&literal[..=eq]);
        for _ in 0..=literal[..eq].chars().count() {
            chars.next();
        }
    }
    let mut depth = 0usize;
    let mut element = String::new();
    let mut masked = String::new();
    while let Some((_, c)) = chars.next() {
        match c {
            '{' => {
                depth += 1;
                out.push('{');
            }
            '}' => {
                depth = depth.checked_sub(1).ok_or_else(bad)?;
                out.push('}');
            }
            ',' => out.push(','),
            c if c.is_whitespace() => {}
            '"' => {
                element.clear();
                loop {
                    match chars.next() {
                        Some((_, '\\')) => element.push(chars.next().ok_or_else(bad)?.1),
                        Some((_, '"')) => break,
                        Some((_, c)) => element.push(c),
                        None => return Err(bad()),
                    }
                }
                write_element(&element, &mut masked, &mut out, &mut f)?;
            }
            c => {
                element.clear();
                element.push(c);
                while let Some(&(_, n)) = chars.peek() {
                    if n == ',' || n == '}' {
                        break;
                    }
                    if n == '\\' {
                        chars.next();
                        element.push(chars.next().ok_or_else(bad)?.1);
                        continue;
                    }
                    element.push(n);
                    chars.next();
                }
                let trimmed = element.trim_end();
                if trimmed.eq_ignore_ascii_case("null") {
                    out.push_str("NULL");
                } else {
                    let e = trimmed.to_string();
                    write_element(&e, &mut masked, &mut out, &mut f)?;
                }
            }
        }
    }
    if depth != 0 {
        return Err(bad());
    }
    Ok(out)
}

fn write_element(
    element: &str,
    masked: &mut String,
    out: &mut String,
    f: &mut impl FnMut(&str, &mut String) -> Result<Option<()>, String>,
) -> Result<(), String> {
    masked.clear();
    match f(element, masked)? {
        None => out.push_str("NULL"),
        Some(()) => {
            out.push('"');
            for c in masked.chars() {
                if c == '"' || c == '\\' {
                    out.push('\\');
                }
                out.push(c);
            }
            out.push('"');
        }
    }
    Ok(())
}

/// Append `value` in COPY's text format (`\N` for NULL; backslash, tab, newline and carriage
/// return escaped).
pub fn copy_field(value: Option<&str>, out: &mut Vec<u8>) {
    match value {
        None => out.extend_from_slice(b"\\N"),
        Some(v) => {
            for &b in v.as_bytes() {
                match b {
                    b'\\' => out.extend_from_slice(b"\\\\"),
                    b'\t' => out.extend_from_slice(b"\\t"),
                    b'\n' => out.extend_from_slice(b"\\n"),
                    b'\r' => out.extend_from_slice(b"\\r"),
                    _ => out.push(b),
                }
            }
        }
    }
}

/// Append the bytes of a COPY text field (not `\N`) to `out`: the backslash escapes undone.
pub fn copy_unescape(field: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' && i + 1 < field.len() {
            out.push(match field[i + 1] {
                b't' => b'\t',
                b'n' => b'\n',
                b'r' => b'\r',
                b'b' => 8,
                b'f' => 12,
                b'v' => 11,
                other => other,
            });
            i += 2;
        } else {
            out.push(field[i]);
            i += 1;
        }
    }
}

/// Cut `s` to at most `max` characters (never inside a character).
pub fn truncate_chars(s: &mut String, max: usize) {
    if let Some((i, _)) = s.char_indices().nth(max) {
        s.truncate(i);
    }
}

/// Append `bytes` in lower-case base32 without padding (RFC 4648 alphabet, lower case: every
/// character is valid in an e-mail local part, a user name and a URL).
pub fn base32(bytes: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 32] = b"abcdefghijklmnopqrstuvwxyz234567";
    let mut encoded = Vec::with_capacity(bytes.len() * 8 / 5 + 1);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    for &b in bytes {
        buffer = (buffer << 8) | u32::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            encoded.push(ALPHABET[((buffer >> bits) & 31) as usize]);
        }
    }
    if bits > 0 {
        encoded.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize]);
    }
    out.push_str(std::str::from_utf8(&encoded).expect("the alphabet is ASCII"));
}

/// An injective padding to at least 2 bytes, for [`Prp::bytes`](super::prp::Prp::bytes):
/// `x` followed by `0x01`, and a `0x00` more if that is still one byte.
pub fn pad(x: &[u8], out: &mut Vec<u8>) {
    out.clear();
    out.extend_from_slice(x);
    out.push(1);
    if out.len() < 2 {
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upper(s: &str) -> String {
        map_array(s, |e, out| {
            out.push_str(&e.to_uppercase());
            Ok(Some(()))
        })
        .unwrap()
    }

    #[test]
    fn arrays_are_rewritten_element_by_element() {
        assert_eq!(upper("{a,b}"), r#"{"A","B"}"#);
        assert_eq!(upper(r#"{"a b",NULL,"x\"y","c,d"}"#), r#"{"A B",NULL,"X\"Y","C,D"}"#);
        assert_eq!(upper("{{a,b},{c,d}}"), r#"{{"A","B"},{"C","D"}}"#);
        assert_eq!(upper("{}"), "{}");
        assert_eq!(upper("[0:1]={a,b}"), r#"[0:1]={"A","B"}"#);
        assert_eq!(upper(r#"{"\\"}"#), r#"{"\\"}"#);
        assert!(map_array("{a", |_, _| Ok(Some(()))).is_err());
    }

    #[test]
    fn copy_fields_are_escaped_and_truncation_respects_characters() {
        let mut out = Vec::new();
        copy_field(Some("a\tb\\c\nd"), &mut out);
        out.push(b'|');
        copy_field(None, &mut out);
        assert_eq!(out, b"a\\tb\\\\c\\nd|\\N");
        let mut s = "Zoë Ünal".to_string();
        truncate_chars(&mut s, 3);
        assert_eq!(s, "Zoë");
    }
}
