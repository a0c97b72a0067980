//! redact

use super::prelude::*;

declare_strategy! {
    /// Replaces text with a marker: `[REDACTED]` by default, or, with `keep-length=#true`, the
    /// `mask` character repeated as many times as the value has characters (so layouts that
    /// depend on length still look right).
    ///
    /// ```kdl
    /// column "api_token" "redact"
    /// column "pin" "redact" keep-length=#true mask="#"
    /// ```
    pub struct Redact {
        name: "redact",
        summary: "replace text with a marker, optionally of the same length",
        accepts: &[TypeClass::Text],
        deterministic: true,
        uniqueness: Lossy,
        params: [
            ("text", Text, Some("[REDACTED]"), "the marker"),
            ("keep-length", Bool, Some("false"), "repeat `mask` as many times as the value has characters instead"),
            ("mask", Text, Some("*"), "the character repeated with `keep-length`"),
        ],
    }
}

struct Marker {
    text: String,
    keep_length: bool,
    mask: char,
}

impl Masker for Marker {
    fn mask(&self, input: &str, _: &dyn Row, out: &mut String) -> Result<Out, String> {
        if self.keep_length {
            out.extend(std::iter::repeat_n(self.mask, input.chars().count()));
        } else {
            out.push_str(&self.text);
        }
        Ok(Out::Value)
    }
}

impl Strategy for Redact {
    fn build(&self, params: &Params, _: &BuildCx<'_>) -> Result<Box<dyn Masker>, String> {
        let mut mask = params.text("mask").chars();
        let (Some(c), None) = (mask.next(), mask.next()) else {
            return Err("`mask` is one character".into());
        };
        Ok(Box::new(Marker { text: params.text("text").to_string(), keep_length: params.bool("keep-length"), mask: c }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_replaced_by_the_marker_or_by_mask_characters() {
        assert_eq!(masks(&*masker(&Redact, &[]), "secret"), Some("[REDACTED]".into()));
        let m = masker(&Redact, &[("keep-length", "true"), ("mask", "#")]);
        assert_eq!(masks(&*m, "Zoë"), Some("###".into()));
        assert!(masker_with(&Redact, &[("mask", "ab")], ColumnType::text()).is_err());
    }
}
