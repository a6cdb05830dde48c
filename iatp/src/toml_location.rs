//! Where in a TOML text a problem is, for error messages that name the
//! line, column and field (trust bundles here, trust configs in mesh-trust).

use std::ops::Range;

/// 1-based line and column of the byte offset `span.start` in `text`.
pub fn line_col(text: &str, span: Range<usize>) -> (usize, usize) {
    let upto = &text[..floor_char_boundary(text, span.start)];
    let line = upto.matches('\n').count() + 1;
    let column = upto.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Line and column of the value at `path` (e.g. `["aggregation", "damping"]`),
/// if the text parses and has it.
pub fn locate(text: &str, path: &[&str]) -> Option<(usize, usize)> {
    let root = toml::de::DeTable::parse(text).ok()?;
    let (first, rest) = path.split_first()?;
    let mut at = root
        .get_ref()
        .iter()
        .find(|(k, _)| k.get_ref().as_ref() == *first)
        .map(|(_, v)| v)?;
    for key in rest {
        at = at.get_ref().get(*key)?;
    }
    Some(line_col(text, at.span()))
}

fn floor_char_boundary(text: &str, mut i: usize) -> usize {
    i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_nested_values() {
        let text = "a = 1\n[b]\nc = 2\n  d = \"é\"\n";
        assert_eq!(locate(text, &["a"]), Some((1, 5)));
        assert_eq!(locate(text, &["b", "c"]), Some((3, 5)));
        assert_eq!(locate(text, &["b", "d"]), Some((4, 7)));
        assert_eq!(locate(text, &["b", "x"]), None);
        assert_eq!(line_col(text, 1000..1000).0, 5);
    }
}
