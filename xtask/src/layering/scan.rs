//! A small Rust scanner for the module layering check: it finds every path in a source file
//! that names a top-level module of its crate, with the line and the text to report.
//!
//! A path names a top-level module when it starts at the crate root: `crate::x`, `$crate::x`,
//! each entry of a group `crate::{x::a, y}`, or a `super::` chain that climbs out of the file's
//! own top-level module (`super::super::x` two modules down). It is found in `use` items,
//! expressions, types and visibilities alike. Comments (doc comments included), string and
//! character literals are blanked first, so neither a doc link nor a string that mentions a
//! module counts. Inline `mod name { ... }` blocks are followed, so `super` inside a
//! `mod tests` resolves as the compiler resolves it.
//!
//! This is a scanner, not a parser: it assumes code that compiles, and it does not expand
//! macros (a path a macro assembles from pieces is not seen; `$crate::x` in a macro body is).

/// One path that starts at the crate root.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Reference {
    /// One-based line of the path's first segment below the root.
    pub(crate) line: usize,
    /// The top-level module (or other item of the crate root) it names; `*` for a glob.
    pub(crate) module: String,
    /// What to show: the whole `use` item, or the path as written.
    pub(crate) text: String,
}

/// The longest text shown for one reference.
const MAX_TEXT_CHARS: usize = 120;

/// Every path of `source` that starts at the crate root. `module_path` is the file's module
/// path below the crate root (`["metrics", "fsm"]` for `src/metrics/fsm.rs`).
pub(crate) fn references(module_path: &[String], source: &str) -> Vec<Reference> {
    let code = blank_comments_and_literals(source);
    let tokens = tokenize(&code);
    Walker {
        code: &code,
        tokens: &tokens,
        module_path,
        inline_mods: Vec::new(),
        depth: 0,
        use_start: None,
        found: Vec::new(),
    }
    .walk()
}

/// `source` with every comment and string or character literal replaced by spaces; line
/// breaks are kept, so lines and offsets stay those of the source.
pub(crate) fn blank_comments_and_literals(source: &str) -> Vec<char> {
    let mut chars: Vec<char> = source.chars().collect();
    let mut index = 0;
    while index < chars.len() {
        let end = match chars[index] {
            '/' if chars.get(index + 1) == Some(&'/') => line_comment_end(&chars, index),
            '/' if chars.get(index + 1) == Some(&'*') => block_comment_end(&chars, index),
            '"' => string_end(&chars, index),
            'r' if starts_identifier(&chars, index) => raw_string_end(&chars, index + 1),
            'b' if starts_identifier(&chars, index) && chars.get(index + 1) == Some(&'r') => {
                raw_string_end(&chars, index + 2)
            }
            '\'' => char_literal_end(&chars, index),
            _ => None,
        };
        match end {
            Some(end) => {
                blank(&mut chars[index..end]);
                index = end;
            }
            None => index += 1,
        }
    }
    chars
}

/// Replaces everything but line breaks with spaces.
fn blank(chars: &mut [char]) {
    for char in chars.iter_mut().filter(|char| **char != '\n') {
        *char = ' ';
    }
}

/// Whether `chars[index]` is the first character of an identifier (not one inside a word).
fn starts_identifier(chars: &[char], index: usize) -> bool {
    index == 0 || !is_identifier_char(chars[index - 1])
}

fn is_identifier_char(char: char) -> bool {
    char.is_alphanumeric() || char == '_'
}

/// The end of a `//` comment starting at `start`: its line break, which is kept.
fn line_comment_end(chars: &[char], start: usize) -> Option<usize> {
    let length = chars[start..].iter().position(|char| *char == '\n');
    Some(length.map_or(chars.len(), |length| start + length))
}

/// The end of a `/* */` comment starting at `start`; such comments nest.
fn block_comment_end(chars: &[char], start: usize) -> Option<usize> {
    let (mut depth, mut index) = (0_usize, start);
    while index + 1 < chars.len() {
        match (chars[index], chars[index + 1]) {
            ('/', '*') => depth += 1,
            ('*', '/') => depth -= 1,
            _ => {
                index += 1;
                continue;
            }
        }
        index += 2;
        if depth == 0 {
            return Some(index);
        }
    }
    Some(chars.len())
}

/// The end of a `"..."` string starting at `start`, past its closing quote.
fn string_end(chars: &[char], start: usize) -> Option<usize> {
    let mut index = start + 1;
    while index < chars.len() {
        match chars[index] {
            '\\' => index += 2,
            '"' => return Some(index + 1),
            _ => index += 1,
        }
    }
    Some(chars.len())
}

/// The end of a raw string whose `#`s or opening quote start at `start` (just after the `r`),
/// or `None` if what follows the `r` is no raw string (an identifier such as `r#type`).
fn raw_string_end(chars: &[char], start: usize) -> Option<usize> {
    let hashes = chars[start..]
        .iter()
        .take_while(|char| **char == '#')
        .count();
    if chars.get(start + hashes) != Some(&'"') {
        return None;
    }
    let mut index = start + hashes + 1;
    while index < chars.len() {
        let closes = chars[index] == '"'
            && chars[index + 1..]
                .iter()
                .take(hashes)
                .filter(|char| **char == '#')
                .count()
                == hashes;
        if closes {
            return Some(index + 1 + hashes);
        }
        index += 1;
    }
    Some(chars.len())
}

/// The end of a character literal starting at `start` (`'x'`, `'\n'`, `'\u{7f}'`), or `None`
/// for a lifetime or a label (`'a`, `'static`).
fn char_literal_end(chars: &[char], start: usize) -> Option<usize> {
    if chars.get(start + 1) == Some(&'\\') {
        // The escaped character is at `start + 2`; the closing quote comes after it.
        let rest = chars.get(start + 3..)?;
        let length = rest.iter().take(12).position(|char| *char == '\'')?;
        return Some(start + 3 + length + 1);
    }
    (chars.get(start + 2) == Some(&'\'')).then_some(start + 3)
}

/// What the walker needs to know of a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// An identifier or keyword, `$crate` included.
    Word,
    /// `::`.
    PathSeparator,
    /// Any other single character.
    Punct(char),
}

/// One token of the blanked code.
#[derive(Clone, Debug)]
struct Token {
    kind: Kind,
    /// The identifier, for words.
    text: String,
    /// Offset of its first character in the blanked code.
    start: usize,
    /// Offset after its last character.
    end: usize,
    /// One-based line.
    line: usize,
}

impl Token {
    fn is_word(&self, word: &str) -> bool {
        self.kind == Kind::Word && self.text == word
    }
}

/// Splits blanked code into words, `::` and single punctuation characters.
fn tokenize(code: &[char]) -> Vec<Token> {
    let mut tokens = Vec::new();
    let (mut index, mut line) = (0, 1);
    while index < code.len() {
        let char = code[index];
        let start = index;
        let kind = if char == '\n' {
            line += 1;
            index += 1;
            continue;
        } else if char.is_whitespace() {
            index += 1;
            continue;
        } else if is_identifier_char(char) || (char == '$' && starts_word(code, index + 1)) {
            index += 1;
            while index < code.len() && is_identifier_char(code[index]) {
                index += 1;
            }
            Kind::Word
        } else if char == ':' && code.get(index + 1) == Some(&':') {
            index += 2;
            Kind::PathSeparator
        } else {
            index += 1;
            Kind::Punct(char)
        };
        let text = match kind {
            Kind::Word => code[start..index].iter().collect(),
            _ => String::new(),
        };
        tokens.push(Token {
            kind,
            text,
            start,
            end: index,
            line,
        });
    }
    tokens
}

fn starts_word(code: &[char], index: usize) -> bool {
    code.get(index)
        .is_some_and(|char| is_identifier_char(*char))
}

/// Walks the tokens of one file, following inline modules and `use` items.
struct Walker<'a> {
    code: &'a [char],
    tokens: &'a [Token],
    /// The file's module path below the crate root.
    module_path: &'a [String],
    /// Inline modules the walk is inside, with the brace depth inside each.
    inline_mods: Vec<(String, usize)>,
    /// Current brace depth.
    depth: usize,
    /// The token index of the `use` of the item being walked, if any.
    use_start: Option<usize>,
    found: Vec<Reference>,
}

impl Walker<'_> {
    fn walk(mut self) -> Vec<Reference> {
        let tokens = self.tokens;
        for (index, token) in tokens.iter().enumerate() {
            match token.kind {
                Kind::Punct('{') => self.open_brace(index),
                Kind::Punct('}') => self.close_brace(),
                Kind::Punct(';') => self.use_start = None,
                Kind::Word if token.text == "use" => self.use_start = Some(index),
                Kind::Word if self.starts_path(index) => {
                    if let Some(root) = self.root_after(index) {
                        self.root_entries(index, root);
                    }
                }
                _ => {}
            }
        }
        self.found
    }

    fn open_brace(&mut self, index: usize) {
        self.depth += 1;
        let opens_mod = index >= 2
            && self.tokens[index - 1].kind == Kind::Word
            && self.tokens[index - 2].is_word("mod");
        if opens_mod {
            let name = self.tokens[index - 1].text.clone();
            self.inline_mods.push((name, self.depth));
        }
    }

    fn close_brace(&mut self) {
        if self.inline_mods.last().map(|(_, depth)| *depth) == Some(self.depth) {
            self.inline_mods.pop();
        }
        self.depth = self.depth.saturating_sub(1);
    }

    /// Whether the word at `index` starts a path (`crate`, `$crate` or `super`, not in the
    /// middle of one, and followed by `::`).
    fn starts_path(&self, index: usize) -> bool {
        let token = &self.tokens[index];
        let first = ["crate", "$crate", "super"].contains(&token.text.as_str());
        let after_separator = index > 0 && self.tokens[index - 1].kind == Kind::PathSeparator;
        let separated = self
            .tokens
            .get(index + 1)
            .is_some_and(|next| next.kind == Kind::PathSeparator);
        first && !after_separator && separated
    }

    /// If the path starting at `index` climbs to the crate root, the index of the token just
    /// below the root (a module name, a group or a glob).
    fn root_after(&self, index: usize) -> Option<usize> {
        if !self.tokens[index].is_word("super") {
            return Some(index + 2);
        }
        let mut supers = 0;
        let mut cursor = index;
        while self
            .tokens
            .get(cursor)
            .is_some_and(|token| token.is_word("super"))
            && self
                .tokens
                .get(cursor + 1)
                .is_some_and(|token| token.kind == Kind::PathSeparator)
        {
            supers += 1;
            cursor += 2;
        }
        let depth = self.module_path.len() + self.inline_mods.len();
        (supers == depth).then_some(cursor)
    }

    /// Records what the path starting at `start` names just below the root, at `root`: one
    /// name, a glob, or each entry of a group.
    fn root_entries(&mut self, start: usize, root: usize) {
        let tokens = self.tokens;
        let Some(token) = tokens.get(root) else {
            return;
        };
        let entries = match token.kind {
            Kind::Punct('{') => self.group_entries(root),
            _ => vec![root],
        };
        for entry in entries {
            let token = &tokens[entry];
            match token.kind {
                Kind::Word if token.text != "self" => {
                    self.record(start, entry, token.text.clone());
                }
                Kind::Punct('*') => self.record(start, entry, "*".to_owned()),
                _ => {}
            }
        }
    }

    /// The index of the first token of each entry of the group opened at `open`.
    fn group_entries(&self, open: usize) -> Vec<usize> {
        let mut entries = Vec::new();
        let mut depth = 0;
        let mut entry_starts = true;
        for (index, token) in self.tokens.iter().enumerate().skip(open) {
            match token.kind {
                Kind::Punct('{') => depth += 1,
                Kind::Punct('}') if depth == 1 => break,
                Kind::Punct('}') => depth -= 1,
                Kind::Punct(',') if depth == 1 => {
                    entry_starts = true;
                    continue;
                }
                _ => {}
            }
            if entry_starts && index > open {
                entries.push(index);
                entry_starts = false;
            }
        }
        entries
    }

    /// Records a reference whose name is at `name`, in the path starting at `start`.
    fn record(&mut self, start: usize, name: usize, module: String) {
        let text = match self.use_start {
            Some(use_start) => self.use_item_text(use_start),
            None => self.path_text(start),
        };
        self.found.push(Reference {
            line: self.tokens[name].line,
            module,
            text,
        });
    }

    /// The `use` item starting at token `use_start`, on one line.
    fn use_item_text(&self, use_start: usize) -> String {
        let end = self.tokens[use_start..]
            .iter()
            .find(|token| token.kind == Kind::Punct(';'))
            .map_or(self.code.len(), |token| token.end);
        let raw: String = self.code[self.tokens[use_start].start..end]
            .iter()
            .collect();
        let collapsed = raw.split_whitespace().collect::<Vec<_>>().join(" ");
        shorten(
            &collapsed
                .replace("{ ", "{")
                .replace(" }", "}")
                .replace(",}", "}"),
        )
    }

    /// The path starting at token `start`: its words and `::` separators as written.
    fn path_text(&self, start: usize) -> String {
        let mut end = start;
        while let Some(next) = self.tokens.get(end + 1) {
            let continues = match self.tokens[end].kind {
                Kind::Word => next.kind == Kind::PathSeparator,
                _ => next.kind == Kind::Word,
            };
            if !continues {
                break;
            }
            end += 1;
        }
        let text: String = self.code[self.tokens[start].start..self.tokens[end].end]
            .iter()
            .collect();
        shorten(&text)
    }
}

/// `text`, cut to [`MAX_TEXT_CHARS`] with an ellipsis.
fn shorten(text: &str) -> String {
    if text.chars().count() <= MAX_TEXT_CHARS {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(MAX_TEXT_CHARS - 3).collect();
    short.push_str("...");
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(line, module, text)` of every reference in `source`, a file at `module_path`.
    fn found(module_path: &[&str], source: &str) -> Vec<(usize, String, String)> {
        let module_path: Vec<String> = module_path.iter().map(|name| (*name).to_owned()).collect();
        references(&module_path, source)
            .into_iter()
            .map(|reference| (reference.line, reference.module, reference.text))
            .collect()
    }

    fn reference(line: usize, module: &str, text: &str) -> (usize, String, String) {
        (line, module.to_owned(), text.to_owned())
    }

    #[test]
    fn a_use_item_is_reported_whole_on_its_line() {
        let source = "//! Doc.\n\nuse std::sync::Arc;\nuse crate::metrics::backpressure::Wait;\n";
        assert_eq!(
            found(&["journal", "core"], source),
            [reference(
                4,
                "metrics",
                "use crate::metrics::backpressure::Wait;"
            )]
        );
    }

    #[test]
    fn each_entry_of_a_nested_group_is_reported_on_its_own_line() {
        let source = "use crate::{\n    journal::{a, b},\n    metrics::c,\n    self,\n};\n";
        let text = "use crate::{journal::{a, b}, metrics::c, self};";
        assert_eq!(
            found(&["stages"], source),
            [reference(2, "journal", text), reference(3, "metrics", text)]
        );
    }

    #[test]
    fn paths_in_expressions_types_and_macros_are_found() {
        let source = "fn f(x: crate::stages::Kind) -> bool {\n    x == crate::stages::Kind::Sink\n}\nmacro_rules! m { () => { $crate::pipeline::go() } }\npub(crate) fn g() {}\n";
        assert_eq!(
            found(&["metrics"], source),
            [
                reference(1, "stages", "crate::stages::Kind"),
                reference(2, "stages", "crate::stages::Kind::Sink"),
                reference(4, "pipeline", "$crate::pipeline::go"),
            ]
        );
    }

    #[test]
    fn comments_strings_and_char_literals_are_not_code() {
        let source = concat!(
            "//! See [`x`](crate::pipeline::X).\n",
            "/// Links [`crate::replay`].\n",
            "/* crate::cli:: /* nested crate::cli::x */ crate::cli::y */\n",
            "const A: &str = \"crate::metrics::a \\\" crate::metrics::b\";\n",
            "const B: &str = r#\"crate::metrics::c \"# ;\n",
            "const C: char = '\"'; const D: char = '\\''; const E: char = '{';\n",
            "fn f<'a>(x: &'a str) -> &'a str { x }\n",
            "use crate::journal::Core;\n",
        );
        assert_eq!(
            found(&["stages"], source),
            [reference(8, "journal", "use crate::journal::Core;")]
        );
    }

    #[test]
    fn super_counts_only_when_it_climbs_out_of_the_top_level_module() {
        let source = concat!(
            "use super::collector::Collector;\n",
            "#[cfg(test)]\n",
            "mod tests {\n",
            "    use super::*;\n",
            "    fn f() { super::super::collector::fold(); }\n",
            "    fn g() { super::super::super::stages::x(); }\n",
            "}\n",
            "fn h() { super::super::replay::x(); }\n",
        );
        assert_eq!(
            found(&["metrics", "fsm"], source),
            [
                reference(6, "stages", "super::super::super::stages::x"),
                reference(8, "replay", "super::super::replay::x"),
            ]
        );
    }

    #[test]
    fn a_glob_of_the_crate_root_is_reported() {
        assert_eq!(
            found(&["cli"], "use crate::*;\n"),
            [reference(1, "*", "use crate::*;")]
        );
    }

    #[test]
    fn long_use_items_are_shortened() {
        let names: Vec<String> = (0..40).map(|index| format!("Name{index}")).collect();
        let source = format!("use crate::stages::{{{}}};\n", names.join(", "));
        let found = found(&["metrics"], &source);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].2.chars().count(), MAX_TEXT_CHARS);
        assert!(found[0].2.ends_with("..."));
    }

    #[test]
    fn raw_identifiers_and_byte_strings_do_not_confuse_the_scanner() {
        let source = "fn r#type() {}\nconst B: &[u8] = b\"crate::x\";\nconst R: &[u8] = br\"crate::y\";\nuse crate::facts::seal;\n";
        assert_eq!(
            found(&["stages"], source),
            [reference(4, "facts", "use crate::facts::seal;")]
        );
    }
}
