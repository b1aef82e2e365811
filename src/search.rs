//! Search in one's own messages: [`SearchQuery`], and the words of a text in the form
//! every backend's full-text index holds them.
//!
//! The words are cut here, in Rust, never by a backend's tokenizer, so that the three
//! backends find the same messages: SQLite's FTS5, PostgreSQL's `tsvector` and InnoDB's
//! `FULLTEXT` each get terms their tokenizer keeps whole and leaves as they are. A term is
//! the owner's id in hexadecimal, `x`, then the word in the alphabet below: lowercase
//! ASCII letters and digits, and the letters of the scripts every backend's tokenizer
//! counts as word characters (Latin, Greek, Cyrillic, Hebrew, Arabic, Thai, kana, CJK
//! ideographs, Hangul, fullwidth forms), stand for themselves; `q` is written `qq`; any
//! other character `q` and its code point in four base-36 digits. The code is prefix-free,
//! so a word is a prefix of another exactly when its term is a prefix of the other's: a
//! prefix query on terms is a prefix query on words.
//!
//! The owner in front keeps a search within one user's part of the index: a word common
//! to millions of messages costs a search only the matches of the user who asks. A
//! conversation is one more term, the owner, `y`, and the partner, matched whole.

use crate::{Error, MessageId, Result, UserId};

/// Options of [`Inbox::search`](crate::Inbox::search): the text to find, and where.
///
/// Every word of the text must be found, each as the start of a word of the message
/// ("lunc" finds "Lunch"), newest first; pages are keyset pages on the message id. With
/// the `serde` feature it is `Deserialize`: `text`, and optionally `with`, `limit` and
/// `before`, so a web framework can read it from a query string.
///
/// ```
/// use directmessages::SearchQuery;
/// // the 20 latest messages with a word starting "lunch", in the conversation with user 2
/// let first = SearchQuery::new("lunch").with(2).limit(20);
/// // the 20 before the oldest one shown (id 1234)
/// let next = SearchQuery::new("lunch").with(2).limit(20).before(1234);
/// # let _ = (first, next);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct SearchQuery {
    pub(crate) text: String,
    #[cfg_attr(feature = "serde", serde(default, rename = "with"))]
    pub(crate) partner: Option<UserId>,
    #[cfg_attr(feature = "serde", serde(default))]
    pub(crate) limit: Option<u32>,
    #[cfg_attr(feature = "serde", serde(default))]
    pub(crate) before: Option<MessageId>,
}

impl SearchQuery {
    /// Messages holding every word of `text`, in every conversation, all of them.
    #[must_use]
    pub fn new(text: &str) -> Self {
        Self {
            text: text.to_owned(),
            partner: None,
            limit: None,
            before: None,
        }
    }

    /// Only the conversation with `partner` (with the searching user itself: nothing).
    #[must_use]
    pub fn with(mut self, partner: UserId) -> Self {
        self.partner = Some(partner);
        self
    }

    /// At most `n` messages, the newest.
    #[must_use]
    pub fn limit(mut self, n: u32) -> Self {
        self.limit = Some(n);
        self
    }

    /// Only messages with an id below `id`.
    #[must_use]
    pub fn before(mut self, id: MessageId) -> Self {
        self.before = Some(id);
        self
    }

    /// The text searched for.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// The longest term any backend indexes, in characters: InnoDB's default
/// `innodb_ft_max_token_size`, which it drops longer terms past. Longer terms are left out
/// on every backend, so that all three find the same: a word of up to 64 characters of
/// the scripts above always fits (16 hexadecimal digits of owner, `x`, 64 characters).
pub(crate) const MAX_TERM_CHARS: usize = 84;

/// The words of `text` as the contract defines them: maximal runs of alphanumeric
/// characters, lowercased, each once, in order of first appearance.
pub(crate) fn words(text: &str) -> Vec<String> {
    let mut words: Vec<String> = Vec::new();
    for word in text.split(|c: char| !c.is_alphanumeric()) {
        if word.is_empty() {
            continue;
        }
        let word = word.to_lowercase();
        if !words.contains(&word) {
            words.push(word);
        }
    }
    words
}

/// Characters beyond ASCII that stand for themselves in a term: letters and digits every
/// backend's tokenizer counts as word characters, and that none of them lowercases into
/// something else. (Checked against a live MariaDB, whose tables are the narrowest, by
/// `tests/mysql.rs`.)
const PLAIN: &[(char, char)] = &[
    ('\u{00C0}', '\u{02AF}'), // Latin-1 letters, Latin Extended-A and -B, IPA
    ('\u{0386}', '\u{03CE}'), // Greek
    ('\u{0400}', '\u{0481}'), // Cyrillic
    ('\u{048A}', '\u{04FF}'),
    ('\u{05D0}', '\u{05EA}'), // Hebrew letters
    ('\u{0621}', '\u{063A}'), // Arabic letters and digits
    ('\u{0641}', '\u{064A}'),
    ('\u{0660}', '\u{0669}'),
    ('\u{0E01}', '\u{0E5B}'), // Thai
    ('\u{1E00}', '\u{1E9B}'), // Latin Extended Additional (Vietnamese)
    ('\u{1EA0}', '\u{1EF9}'),
    ('\u{1F00}', '\u{1FFF}'), // Greek Extended
    ('\u{3041}', '\u{30FF}'), // Hiragana, Katakana
    ('\u{3400}', '\u{4DB5}'), // CJK Extension A
    ('\u{4E00}', '\u{9FA5}'), // CJK Unified Ideographs
    ('\u{AC00}', '\u{D7A3}'), // Hangul syllables
    ('\u{FF10}', '\u{FFDC}'), // fullwidth and halfwidth forms
];

/// Whether `c` stands for itself in a term (see [`PLAIN`]).
pub(crate) fn is_plain(c: char) -> bool {
    match c {
        'q' => false,
        'a'..='z' | '0'..='9' => true,
        _ if c.is_ascii() => false,
        _ => PLAIN.iter().any(|&(lo, hi)| lo <= c && c <= hi),
    }
}

/// Appends `word` to `out` in the alphabet of terms (see the module's documentation).
fn encode(word: &str, out: &mut String) {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    for c in word.chars() {
        if is_plain(c) {
            out.push(c);
        } else if c == 'q' {
            out.push_str("qq");
        } else {
            // Four base-36 digits hold every code point (36^4 > 0x10FFFF); the first is
            // at most 'n', never 'q', so `qq` stays unambiguous.
            let mut code = u32::from(c);
            let mut digits = [0_u8; 4];
            for digit in digits.iter_mut().rev() {
                *digit = DIGITS[(code % 36) as usize];
                code /= 36;
            }
            out.push('q');
            out.extend(digits.iter().map(|&d| char::from(d)));
        }
    }
}

/// The start of every term of `owner`'s.
fn owner_prefix(owner: UserId) -> String {
    // Two's complement for a negative id: still one fixed string per owner.
    format!("{:x}", owner as u64)
}

/// The term of `owner`'s `word`, or `None` when it is too long to index.
fn word_term(prefix: &str, word: &str) -> Option<String> {
    let mut term = String::with_capacity(prefix.len() + 1 + word.len());
    term.push_str(prefix);
    term.push('x');
    encode(word, &mut term);
    (term.chars().count() <= MAX_TERM_CHARS).then_some(term)
}

/// The term of `owner`'s conversation with `partner`.
fn partner_term(owner: UserId, partner: UserId) -> String {
    format!("{}y{:x}", owner_prefix(owner), partner as u64)
}

/// The terms `owner`'s copy of a message with `partner` holding `content` is found by,
/// separated by spaces: the form every backend's index row is written from.
pub(crate) fn document(owner: UserId, partner: UserId, content: &str) -> String {
    let prefix = owner_prefix(owner);
    let mut terms: Vec<String> = words(content)
        .iter()
        .filter_map(|word| word_term(&prefix, word))
        .collect();
    terms.push(partner_term(owner, partner));
    terms.join(" ")
}

/// A search as terms of the index: every one of `prefixes` must start a term of the
/// message, and `exact` (the conversation), if any, be one.
///
/// `pub` only to appear in the sealed `Operations` trait; never nameable outside.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(unreachable_pub)]
pub struct Terms {
    /// Word terms, each matched as a prefix.
    pub(crate) prefixes: Vec<String>,
    /// The conversation's term, matched whole.
    pub(crate) exact: Option<String>,
}

/// The terms `user`'s search for `query` looks for; `None` when it can find nothing (a
/// conversation with oneself, or a word too long for any term to start with it).
///
/// # Errors
/// [`Error::EmptySearch`] when the text holds no word.
pub(crate) fn terms(user: UserId, query: &SearchQuery) -> Result<Option<Terms>> {
    let words = words(&query.text);
    if words.is_empty() {
        return Err(Error::EmptySearch);
    }
    if query.partner == Some(user) {
        return Ok(None);
    }
    let prefix = owner_prefix(user);
    let mut prefixes = Vec::with_capacity(words.len());
    for word in &words {
        match word_term(&prefix, word) {
            Some(term) => prefixes.push(term),
            None => return Ok(None),
        }
    }
    // A word that starts another word of the query asks nothing more of a message.
    let needed: Vec<String> = prefixes
        .iter()
        .filter(|t| {
            !prefixes
                .iter()
                .any(|other| other.len() > t.len() && other.starts_with(t.as_str()))
        })
        .cloned()
        .collect();
    Ok(Some(Terms {
        prefixes: needed,
        exact: query.partner.map(|partner| partner_term(user, partner)),
    }))
}

impl Terms {
    /// Whether an index row holding `row` (its terms, separated by spaces) matches: every
    /// prefix starts one of its terms, and the exact term is one of them. What the
    /// backends' full-text indexes answer, for the few rows read without them.
    pub(crate) fn matches(&self, row: &str) -> bool {
        let terms: Vec<&str> = row.split(' ').collect();
        self.prefixes
            .iter()
            .all(|p| terms.iter().any(|t| t.starts_with(p.as_str())))
            && self.exact.iter().all(|e| terms.contains(&e.as_str()))
    }

    /// SQLite FTS5's query syntax: every term a quoted string, words with `*`; the
    /// terms are ANDed.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) fn fts5(&self) -> String {
        let quoted = |t: &str| format!("\"{}\"", t.replace('"', "\"\""));
        let mut parts: Vec<String> = self.prefixes.iter().map(|t| quoted(t) + "*").collect();
        parts.extend(self.exact.iter().map(|t| quoted(t)));
        parts.join(" AND ")
    }

    /// PostgreSQL's `tsquery` syntax (read by the `::tsquery` cast, which normalizes
    /// nothing): every term a quoted lexeme, words with `:*`, joined by `&`.
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    pub(crate) fn tsquery(&self) -> String {
        let quoted = |t: &str| format!("'{}'", t.replace('\\', "\\\\").replace('\'', "''"));
        let mut parts: Vec<String> = self.prefixes.iter().map(|t| quoted(t) + ":*").collect();
        parts.extend(self.exact.iter().map(|t| quoted(t)));
        parts.join(" & ")
    }

    /// InnoDB's boolean mode: every term required (`+`), words with `*`. Terms hold word
    /// characters only, so nothing in them is an operator.
    #[cfg_attr(not(feature = "mysql"), allow(dead_code))]
    pub(crate) fn boolean_mode(&self) -> String {
        let mut parts: Vec<String> = self.prefixes.iter().map(|t| format!("+{t}*")).collect();
        parts.extend(self.exact.iter().map(|t| format!("+{t}")));
        parts.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_runs_of_alphanumerics_lowercased_once_each() {
        assert_eq!(
            words("Lunch at 12:30? LUNCH! l'été, e-mail_x@y.z 東京タワー🍣ok"),
            [
                "lunch",
                "at",
                "12",
                "30",
                "l",
                "été",
                "e",
                "mail",
                "x",
                "y",
                "z",
                "東京タワー",
                "ok"
            ]
        );
        assert!(words(" ,.!?🎉 \0 ").is_empty());
    }

    #[test]
    fn terms_keep_the_prefix_order_of_words() {
        let prefix = owner_prefix(42);
        assert_eq!(prefix, "2a");
        let all = [
            "q",
            "qq",
            "quick",
            "a",
            "z",
            "é",
            "ē",
            "ä̈",
            "ß",
            "东京",
            "日",
            "σ",
            "ж",
            "٣",
            "ก",
            "한",
            "ｑ",
            "𝒜",
            "ⅷ",
            "²",
            "ǆ",
            "i̇",
            "क्ष",
            "qé",
        ];
        for a in all {
            for b in all {
                let (ta, tb) = (word_term(&prefix, a), word_term(&prefix, b));
                let (ta, tb) = (ta.expect("short"), tb.expect("short"));
                assert_eq!(
                    b.starts_with(a),
                    tb.starts_with(ta.as_str()),
                    "{a:?} {b:?} {ta:?} {tb:?}"
                );
            }
        }
    }

    #[test]
    fn terms_are_word_characters_only() {
        for word in ["hello", "qu'il", "𝒜𝒷", "x\u{0301}"] {
            let term = word_term("1", word).expect("short");
            assert!(term
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || is_plain(c)));
        }
    }

    #[test]
    fn an_owners_terms_never_start_anothers() {
        let a = document(1, 2, "lunch");
        let b = document(0x1a, 2, "lunch");
        assert_eq!(a, "1xlunch 1y2");
        assert!(b
            .split(' ')
            .all(|t| !t.starts_with("1x") && !t.starts_with("1y")));
        assert_eq!(
            document(-1, 2, "a"),
            "ffffffffffffffffxa ffffffffffffffffy2"
        );
    }

    #[test]
    fn a_word_of_64_plain_characters_fits_any_owner() {
        let word = "é".repeat(64);
        assert!(word_term(&owner_prefix(i64::MIN), &word).is_some());
        assert!(word_term(&owner_prefix(i64::MIN), &"é".repeat(68)).is_none());
    }

    #[test]
    fn queries_need_a_word_and_drop_implied_ones() {
        assert!(matches!(
            terms(1, &SearchQuery::new(" !? 🎉")),
            Err(Error::EmptySearch)
        ));
        let t = terms(1, &SearchQuery::new("lun Lunch lunch x").with(2))
            .expect("words")
            .expect("terms");
        assert_eq!(t.prefixes, ["1xlunch", "1xx"]);
        assert_eq!(t.exact.as_deref(), Some("1y2"));
        assert_eq!(
            terms(1, &SearchQuery::new("a").with(1)).expect("words"),
            None
        );
        assert_eq!(t.fts5(), "\"1xlunch\"* AND \"1xx\"* AND \"1y2\"");
        assert_eq!(t.tsquery(), "'1xlunch':* & '1xx':* & '1y2'");
        assert_eq!(t.boolean_mode(), "+1xlunch* +1xx* +1y2");
        assert!(t.matches("1xlunches 1xxyz 1y2"));
        assert!(
            !t.matches("1xlunches 1xxyz 1y22"),
            "the conversation matches whole"
        );
        assert!(!t.matches("1xlunches 1y2"), "every word");
        assert!(!t.matches("2xlunch 2xx 1y2"), "another owner's terms");
    }

    /// Every character that stands for itself in a term is a word character of
    /// MariaDB's full-text parser, whose Unicode tables are the oldest of the three
    /// backends': a row holding `zz` + it + `zz` is found by that term. (Split at the
    /// character, the row would hold only the pieces, too short to index, and not be
    /// found.)
    #[cfg(feature = "mysql")]
    #[test]
    fn plain_characters_are_word_characters_of_mariadb() {
        use diesel::prelude::*;
        #[derive(QueryableByName)]
        struct Id {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            id: i64,
        }
        let url = match std::env::var("DIRECTMESSAGES_MYSQL_URL") {
            Ok(url) if !url.is_empty() => url,
            _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("CI=true but DIRECTMESSAGES_MYSQL_URL is not set")
            }
            _ => {
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "note: MySQL test skipped: DIRECTMESSAGES_MYSQL_URL is not set"
                );
                return;
            }
        };
        let mut conn = diesel::MysqlConnection::establish(&url).expect("MySQL");
        let table = format!("plain_probe_{}", std::process::id());
        diesel::sql_query(format!(
            "CREATE TABLE {table} (id BIGINT PRIMARY KEY, terms TEXT CHARACTER SET utf8mb4 \
             COLLATE utf8mb4_bin NOT NULL, FULLTEXT KEY (terms)) ENGINE = InnoDB"
        ))
        .execute(&mut conn)
        .expect("probe table");
        let plain: Vec<char> = PLAIN
            .iter()
            .flat_map(|&(lo, hi)| lo..=hi)
            .filter(|&c| c.is_alphanumeric() && c.to_lowercase().eq(std::iter::once(c)))
            .collect();
        let mut missing = Vec::new();
        for chunk in plain.chunks(1000) {
            let rows: Vec<String> = chunk
                .iter()
                .map(|&c| format!("({}, 'zz{c}zz')", u32::from(c)))
                .collect();
            diesel::sql_query(format!("INSERT INTO {table} VALUES {}", rows.join(", ")))
                .execute(&mut conn)
                .expect("probe rows");
        }
        for chunk in plain.chunks(1000) {
            let terms: Vec<String> = chunk.iter().map(|c| format!("zz{c}zz")).collect();
            let found: Vec<Id> = diesel::sql_query(format!(
                "SELECT id FROM {table} WHERE MATCH (terms) AGAINST (? IN BOOLEAN MODE)"
            ))
            .bind::<diesel::sql_types::Text, _>(terms.join(" "))
            .load(&mut conn)
            .expect("probe search");
            let found: std::collections::BTreeSet<i64> = found.into_iter().map(|r| r.id).collect();
            missing.extend(
                chunk
                    .iter()
                    .filter(|&&c| !found.contains(&i64::from(u32::from(c))))
                    .map(|&c| format!("U+{:04X}", u32::from(c))),
            );
            assert_eq!(found.len(), chunk.len(), "{missing:?}");
        }
        diesel::sql_query(format!("DROP TABLE {table}"))
            .execute(&mut conn)
            .expect("drop probe table");
        assert!(plain.len() > 39_000, "{}", plain.len());
        assert!(missing.is_empty(), "{missing:?}");
    }
}
