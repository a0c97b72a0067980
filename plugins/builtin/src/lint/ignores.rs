//! `-- confiture:ignore RULE[,RULE…] reason` comments: found with PostgreSQL's scanner (a
//! comment, not a string that mentions one), attached to the statement they are about, applied
//! to findings, and themselves reported when they suppress nothing or say no why.

use super::Finding;

/// An `-- confiture:ignore RULE[,RULE…] reason` comment.
pub struct Ignore {
    pub offset: usize,
    pub rules: Vec<String>,
    pub reason: bool,
    pub used: bool,
}

/// A file's ignore comments, and for each statement its byte range and the comments that apply
/// to it (above it, inside it, or after it on its last line).
pub struct FileIgnores {
    pub comments: Vec<Ignore>,
    statements: Vec<(usize, usize, Vec<usize>)>,
}

impl FileIgnores {
    pub fn new(text: &str) -> Self {
        FileIgnores { comments: ignores(text), statements: Vec::new() }
    }

    /// The next statement, `start..end` in `text` (`first_token`: where its comments end); the
    /// previous one ended at `prev_end`. Ignore comments between the previous statement and this
    /// one's first token belong to this one — except one that ends the previous statement's last
    /// line (after it, with this statement on a later line) — and so do those inside it.
    pub fn attach(&mut self, text: &str, prev_end: usize, start: usize, first_token: usize, end: usize) {
        let mut above = Vec::new();
        for (k, i) in self.comments.iter().enumerate().filter(|(_, i)| i.offset >= prev_end && i.offset < end) {
            let trailing = prev_end > 0
                && i.offset < first_token
                && !text[prev_end..i.offset].contains('\n')
                && text[i.offset..first_token].contains('\n');
            match self.statements.last_mut() {
                Some(prev) if trailing => prev.2.push(k),
                _ => above.push(k),
            }
        }
        self.statements.push((start, end, above));
    }

    /// Ignore comments after the file's last statement (which ended at `prev_end`), on its line.
    pub fn attach_trailing(&mut self, text: &str, prev_end: usize) {
        let Some(last) = self.statements.last_mut() else { return };
        for (k, i) in self.comments.iter().enumerate().filter(|(_, i)| i.offset >= prev_end) {
            if !text[prev_end..i.offset].contains('\n') {
                last.2.push(k);
            }
        }
    }

    /// The file's statements were not checked (it does not parse): its comments had no chance
    /// to suppress anything, so none is unused.
    pub fn excuse(&mut self) {
        for i in &mut self.comments {
            i.used = true;
        }
    }

    /// Whether an ignore comment of the finding's statement names its rule (and mark it used).
    pub fn suppresses(&mut self, f: &Finding) -> bool {
        let Some((_, _, applies)) =
            self.statements.iter().find(|(s, e, _)| f.span.0 >= *s && f.span.0 < (*e).max(*s + 1))
        else {
            return false;
        };
        match applies.iter().find(|&&k| self.comments[k].rules.iter().any(|r| *r == f.rule || r == "all")) {
            Some(&k) => {
                self.comments[k].used = true;
                true
            }
            None => false,
        }
    }
}

/// The ignore comments of a file.
fn ignores(text: &str) -> Vec<Ignore> {
    const MARK: &str = "confiture:ignore";
    if !text.contains(MARK) {
        return Vec::new();
    }
    // Only real comments count: the scanner knows a comment from a string that mentions one.
    let Ok(scan) = confiture_engine::pg_query::scan(text) else { return Vec::new() };
    let mut out = Vec::new();
    for t in scan.tokens {
        let (start, end) = (t.start as usize, t.end as usize);
        let Some(comment) = text.get(start..end) else { continue };
        let body = comment.trim_start_matches("--").trim_start_matches("/*").trim_end_matches("*/").trim();
        if let Some(rest) = body.strip_prefix(MARK) {
            let (rules, reason) = ignore_rules(rest);
            out.push(Ignore { offset: start, rules, reason, used: false });
        }
    }
    out
}

/// `drop-column,drop-table why` or `drop-column, drop-table why` → the rules, and whether a
/// reason follows.
fn ignore_rules(rest: &str) -> (Vec<String>, bool) {
    let mut words = rest.split_whitespace().peekable();
    let mut list = String::new();
    while let Some(w) = words.next() {
        list.push_str(w);
        let more = w.ends_with(',') || words.peek().is_some_and(|n| n.starts_with(','));
        if !more {
            break;
        }
    }
    let rules = list.split(',').filter(|r| !r.is_empty()).map(str::to_string).collect();
    (rules, words.next().is_some())
}

/// The length of the comments and blanks a statement's text starts with.
pub fn leading_comments_len(text: &str) -> usize {
    let mut rest = text;
    loop {
        let trimmed = rest.trim_start();
        if let Some(after) = trimmed.strip_prefix("--") {
            rest = after.find('\n').map_or("", |i| &after[i + 1..]);
        } else if let Some(after) = trimmed.strip_prefix("/*") {
            rest = after.find("*/").map_or("", |i| &after[i + 2..]);
        } else {
            return text.len() - trimmed.len();
        }
    }
}
