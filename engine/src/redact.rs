//! Finding secrets in free text: the passwords of connection strings, parsed or not. A module of
//! its own, with no imports, so every layer (diagnostics, templates, errors, reports) can redact
//! what it shows.

/// Redact passwords in any text that may contain connection strings: every `user:password@`
/// shape, whether or not it parses as a URL (`postgresql://u:pa/ss@h/db`, `u:secret@h/db`,
/// passwords with quotes or `@` in them), and `password=…` pairs.
pub fn redact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for r in secret_ranges(text) {
        out.push_str(&text[last..r.start]);
        out.push_str("***");
        last = r.end;
    }
    out.push_str(&text[last..]);
    out
}

/// Like [`redact`], but every byte of a secret becomes `*`, so byte offsets into the text stay
/// valid: for code frames of files that hold connection strings.
pub fn mask(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for r in secret_ranges(text) {
        out.push_str(&text[last..r.start]);
        out.extend(std::iter::repeat_n('*', r.len()));
        last = r.end;
    }
    out.push_str(&text[last..]);
    out
}

/// The byte ranges of secrets in `text`, sorted and disjoint: the password of every
/// `user:password@` shape in a whitespace-separated word — from the first `:` of the user-info
/// part (after `://` if there is one) to the word's last `@`, since a password may hold `@`, `:`,
/// `/` or quotes and hiding a little too much is better than showing any of it — and the value of
/// every `password=` pair (quoted or not).
fn secret_ranges(text: &str) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
        match (c.is_whitespace(), start) {
            (true, Some(s)) => {
                ranges.extend(userinfo_password(&text[s..i]).map(|r| s + r.start..s + r.end));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    let mut from = 0;
    while let Some(i) = text[from..].find("password").map(|i| from + i) {
        from = i + "password".len();
        let after = &text[from..];
        let Some(value) = after.trim_start().strip_prefix('=') else { continue };
        let value = value.trim_start();
        let value_start = text.len() - value.len();
        let len = if let Some(quoted) = value.strip_prefix('\'') {
            let mut escaped = false;
            let close = quoted.char_indices().find(|(_, c)| {
                let hit = *c == '\'' && !escaped;
                escaped = *c == '\\' && !escaped;
                hit
            });
            close.map_or(value.len(), |(j, _)| j + 2)
        } else {
            value.find(char::is_whitespace).unwrap_or(value.len())
        };
        if len > 0 {
            ranges.push(value_start..value_start + len);
        }
        from = value_start + len;
    }
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<std::ops::Range<usize>> = Vec::with_capacity(ranges.len());
    for r in ranges {
        match merged.last_mut() {
            Some(last) if r.start <= last.end => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

/// Where the password of a `user:password@` shape is in `word`, if it has one: from the first `:`
/// of the user-info part to the word's *last* `@`. The user-info starts after the scheme when the
/// word's first `:` is a scheme's (`postgresql://`), else at the start of the word. So a password
/// holding `://` or `@`, and several connection strings run together in one word
/// (`…,postgresql://b:p2@h/y`), are hidden too — with what lies between them.
fn userinfo_password(word: &str) -> Option<std::ops::Range<usize>> {
    let at = word.rfind('@')?;
    let before = &word[..at];
    let first_colon = before.find(':')?;
    let from = if before[first_colon..].starts_with("://") { first_colon + 3 } else { 0 };
    let colon = from + before[from..].find(':')?;
    (colon + 1 < at).then_some(colon + 1..at)
}
