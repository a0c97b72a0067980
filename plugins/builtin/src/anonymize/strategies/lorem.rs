//! lorem

use super::prelude::*;
use crate::anonymize::key::Prf;

declare_strategy! {
    /// Replaces text with lorem ipsum of the same length in characters: classic Latin filler
    /// words chosen by the key, separated by spaces, the first letter capitalised, cut to the
    /// length of the original (a trailing space is dropped, so the result may be one
    /// character shorter). Free text such as notes, comments and descriptions keeps its size,
    /// so layouts and length statistics still look right, and nothing of the original is left.
    /// The same text gives the same filler with the same key; it is `lossy`.
    ///
    /// ```kdl
    /// column "notes" "lorem"
    /// ```
    pub struct Lorem {
        name: "lorem",
        summary: "lorem ipsum text of the same length",
        accepts: &[TypeClass::Text],
        deterministic: true,
        uniqueness: Lossy,
        params: [],
    }
}

/// The words of the classic passage (lower case, ASCII), one space apart.
const TEXT: &str = "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor \
                    incididunt ut labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco \
                    laboris nisi aliquip ex ea commodo consequat duis aute irure in reprehenderit voluptate velit esse \
                    cillum eu fugiat nulla pariatur excepteur sint occaecat cupidatat non proident sunt culpa qui \
                    officia deserunt mollit anim id est laborum";

struct Filler {
    prf: Prf,
    words: Vec<&'static str>,
}

impl Masker for Filler {
    fn mask(&self, input: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        let length = input.chars().count();
        let mut s = self.prf.stream(input.as_bytes());
        // Every word is ASCII: bytes are characters.
        while out.len() < length {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(s.pick(&self.words));
        }
        out.truncate(length);
        if out.ends_with(' ') {
            out.pop();
        }
        if let Some(first) = out.get_mut(..1) {
            first.make_ascii_uppercase();
        }
        Ok(Out::Value)
    }
}

impl Strategy for Lorem {
    fn build(&self, _: &Params, cx: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        Ok(Box::new(Filler { prf: cx.prf(), words: TEXT.split(' ').collect() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filler_has_the_length_of_the_input_in_characters() {
        let m = masker(&Lorem, &[]);
        for len in 0..200 {
            let input: String = "é".repeat(len);
            let a = masks(&*m, &input).unwrap();
            let n = a.chars().count();
            assert!(n == len || (n + 1 == len && len > 0), "{len}: {a:?}");
            assert!(!a.ends_with(' ') && !a.starts_with(' ') && !a.contains("  "), "{a:?}");
            let mut chars = a.chars();
            assert!(chars.next().is_none_or(|c| c.is_ascii_uppercase()), "{a:?}");
            assert!(chars.all(|c| c.is_ascii_lowercase() || c == ' '), "{a:?}");
        }
        assert_eq!(masks(&*m, "").unwrap(), "");
    }

    #[test]
    fn filler_is_made_of_the_words_capitalised_and_stable() {
        let m = masker(&Lorem, &[]);
        let input = "Patient reported chest pain after the appointment on Monday.";
        let a = masks(&*m, input).unwrap();
        assert!(a.starts_with(|c: char| c.is_ascii_uppercase()), "{a}");
        let words: Vec<&str> = TEXT.split(' ').collect();
        let output: Vec<&str> = a.split(' ').collect();
        // Every word but the last (which may be cut) is a whole lorem word.
        for w in &output[..output.len() - 1] {
            assert!(words.contains(&w.to_ascii_lowercase().as_str()), "{w} in {a}");
        }
        assert_eq!(masks(&*m, input).unwrap(), a);
        assert_ne!(masks(&*m, "Patient reported chest pain after the appointment on Friday.").unwrap(), a);
        assert!(words.len() >= 60 && words.iter().all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase())));
    }
}
