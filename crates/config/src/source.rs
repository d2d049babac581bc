//! Where things are in a YAML file: a map from field paths to line/column, built from parser events.
//!
//! serde tells us *what* is wrong but not *where* a semantically wrong field is, so the loader
//! scans the document once with the YAML event parser and records the position of every key and
//! value under its field path (`stages.staging.hooks[0].timeout`). Aliases are recorded as
//! themselves and never expanded, so this scan is linear in the size of the input.

use std::collections::HashMap;
use std::fmt::Write as _;

use serde_saphyr::granit_parser::{Event, Parser, ScanError, Span};

/// A 1-based line and column (columns count characters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

#[derive(Debug, Clone)]
struct Entry {
    path: String,
    key: Option<(Position, usize)>,
    value: (Position, usize),
    scalar: Option<String>,
    is_map: bool,
}

/// One node of the document as the scan saw it.
pub(crate) struct Node<'a> {
    pub(crate) path: &'a str,
    pub(crate) key: Option<(Position, usize)>,
    pub(crate) value: (Position, usize),
    pub(crate) scalar: Option<&'a str>,
    pub(crate) is_map: bool,
}

/// The text of one config file with the position of every field path in it.
#[derive(Debug, Clone)]
pub struct SourceMap {
    file: String,
    text: String,
    entries: Vec<Entry>,
    by_path: HashMap<String, usize>,
}

/// The deepest nesting the scan follows; a release config needs about eight levels.
const MAX_DEPTH: usize = 64;
/// The most nodes the scan records, and the most a document may expand to through aliases; far
/// beyond any real release config.
const MAX_NODES: usize = 100_000;

/// Why the scan stopped.
#[derive(Debug)]
pub(crate) enum ScanProblem {
    /// The YAML is malformed.
    Syntax { position: Position, message: String },
    /// The document is too deep or too large to be a release config.
    TooLarge { position: Position, message: String },
}

enum Frame {
    Map {
        path: String,
        key: Option<(String, Position, usize)>,
        expecting_key: bool,
    },
    Seq {
        path: String,
        index: usize,
    },
}

/// Counts how many nodes the document would have with every alias expanded, without expanding
/// anything: an anchored node's expanded size is recorded when it ends, and each alias adds it.
#[derive(Default)]
struct Expansion {
    total: u64,
    anchors: HashMap<usize, u64>,
    /// For each open container: its anchor id and the total before it started.
    open: Vec<(usize, u64)>,
}

impl Expansion {
    fn count(&mut self, nodes: u64, at: Position) -> Result<(), ScanProblem> {
        self.total = self.total.saturating_add(nodes);
        if self.total > MAX_NODES as u64 {
            return Err(ScanProblem::TooLarge {
                position: at,
                message: format!(
                    "with its aliases expanded the document has more than {MAX_NODES} nodes"
                ),
            });
        }
        Ok(())
    }

    fn scalar(&mut self, anchor: usize, at: Position) -> Result<(), ScanProblem> {
        if anchor != 0 {
            self.anchors.insert(anchor, 1);
        }
        self.count(1, at)
    }

    fn alias(&mut self, anchor: usize, at: Position) -> Result<(), ScanProblem> {
        let size = self.anchors.get(&anchor).copied().unwrap_or(1);
        self.count(size, at)
    }

    fn start(&mut self, anchor: usize, at: Position) -> Result<(), ScanProblem> {
        self.open.push((anchor, self.total));
        self.count(1, at)
    }

    fn end(&mut self) {
        if let Some((anchor, before)) = self.open.pop()
            && anchor != 0
        {
            self.anchors.insert(anchor, self.total - before);
        }
    }
}

fn position(marker: &serde_saphyr::granit_parser::Marker) -> Position {
    Position {
        line: marker.line(),
        column: marker.col() + 1,
    }
}

fn width(span: &Span) -> usize {
    if span.start.line() == span.end.line() {
        span.end.col().saturating_sub(span.start.col()).max(1)
    } else {
        1
    }
}

/// Appends a mapping key to a path: `a.b` for plain keys, `a["x y"]` for others.
pub(crate) fn join_key(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let mut joined = path.to_string();
    if plain {
        if !joined.is_empty() {
            joined.push('.');
        }
        joined.push_str(key);
    } else {
        let _ = write!(joined, "[{key:?}]");
    }
    joined
}

/// Appends a sequence index to a path: `a[3]`.
pub(crate) fn join_index(path: &str, index: usize) -> String {
    format!("{path}[{index}]")
}

impl SourceMap {
    /// Scans `text`; fails on malformed YAML or a document too large to be a release config.
    pub(crate) fn scan(file: &str, text: &str) -> Result<Self, ScanProblem> {
        let mut map = SourceMap {
            file: file.to_string(),
            text: text.to_string(),
            entries: Vec::new(),
            by_path: HashMap::new(),
        };
        let mut stack: Vec<Frame> = Vec::new();
        let mut documents = 0usize;
        let mut expansion = Expansion::default();
        for event in Parser::new_from_str(text) {
            let (event, span) = event.map_err(|e: ScanError| ScanProblem::Syntax {
                position: position(e.marker()),
                message: e.info(),
            })?;
            let here = position(&span.start);
            match event {
                Event::DocumentStart(..) => {
                    documents += 1;
                    if documents > 1 {
                        return Err(ScanProblem::Syntax {
                            position: here,
                            message: "a release config is a single YAML document".into(),
                        });
                    }
                }
                Event::Scalar(value, _, anchor, _) => {
                    expansion.scalar(anchor, here)?;
                    map.node(
                        &mut stack,
                        here,
                        width(&span),
                        Some(value.into_owned()),
                        None,
                    )?;
                }
                Event::Alias(anchor) => {
                    expansion.alias(anchor, here)?;
                    map.node(&mut stack, here, width(&span), None, None)?;
                }
                Event::MappingStart(_, anchor, _) => {
                    expansion.start(anchor, here)?;
                    map.node(&mut stack, here, 1, None, Some(true))?;
                }
                Event::SequenceStart(_, anchor, _) => {
                    expansion.start(anchor, here)?;
                    map.node(&mut stack, here, 1, None, Some(false))?;
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    expansion.end();
                    stack.pop();
                    Self::advance(&mut stack);
                }
                _ => {}
            }
        }
        Ok(map)
    }

    /// Records one node; `container` is `Some(true)` for a mapping, `Some(false)` for a sequence.
    fn node(
        &mut self,
        stack: &mut Vec<Frame>,
        at: Position,
        width: usize,
        scalar: Option<String>,
        container: Option<bool>,
    ) -> Result<(), ScanProblem> {
        if self.entries.len() >= MAX_NODES {
            return Err(ScanProblem::TooLarge {
                position: at,
                message: format!("the document has more than {MAX_NODES} nodes"),
            });
        }
        if stack.len() >= MAX_DEPTH {
            return Err(ScanProblem::TooLarge {
                position: at,
                message: format!("the document nests deeper than {MAX_DEPTH} levels"),
            });
        }
        // A scalar in key position only names the next value; complex keys are recorded under
        // a placeholder so their children do not disturb real paths.
        if let Some(Frame::Map {
            key, expecting_key, ..
        }) = stack.last_mut()
            && *expecting_key
        {
            if container.is_none() {
                *key = Some((scalar.unwrap_or_default(), at, width));
                *expecting_key = false;
                return Ok(());
            }
            *key = Some(("<complex key>".into(), at, width));
        }
        let (path, key) = match stack.last() {
            None => (String::new(), None),
            Some(Frame::Map { path, key, .. }) => match key {
                Some((name, key_at, key_width)) => {
                    (join_key(path, name), Some((*key_at, *key_width)))
                }
                None => (join_key(path, "<complex key>"), None),
            },
            Some(Frame::Seq { path, index }) => (join_index(path, *index), None),
        };
        self.by_path
            .entry(path.clone())
            .or_insert(self.entries.len());
        self.entries.push(Entry {
            path: path.clone(),
            key,
            value: (at, width),
            scalar,
            is_map: container == Some(true),
        });
        match container {
            Some(true) => stack.push(Frame::Map {
                path,
                key: None,
                expecting_key: true,
            }),
            Some(false) => stack.push(Frame::Seq { path, index: 0 }),
            None => Self::advance(stack),
        }
        Ok(())
    }

    /// Moves the innermost container past the node that just ended.
    fn advance(stack: &mut [Frame]) {
        match stack.last_mut() {
            Some(Frame::Map { expecting_key, .. }) => *expecting_key = true,
            Some(Frame::Seq { index, .. }) => *index += 1,
            None => {}
        }
    }

    /// The file name given to the loader.
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The whole text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// One line of the text (1-based), without its line break.
    pub fn line(&self, line: usize) -> Option<&str> {
        self.text
            .lines()
            .nth(line.checked_sub(1)?)
            .map(|l| l.trim_end_matches('\r'))
    }

    /// Whether the document has no content at all (empty, or only comments).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the path exists in the document.
    pub fn contains(&self, path: &str) -> bool {
        self.by_path.contains_key(path)
    }

    /// Where the value at `path` starts.
    pub fn value_position(&self, path: &str) -> Option<Position> {
        self.by_path.get(path).map(|&i| self.entries[i].value.0)
    }

    /// Where the key of `path` is (for mapping entries).
    pub fn key_position(&self, path: &str) -> Option<Position> {
        self.by_path
            .get(path)
            .and_then(|&i| self.entries[i].key.map(|k| k.0))
    }

    /// The scalar text at `path`, as written (after YAML escapes).
    pub fn scalar(&self, path: &str) -> Option<&str> {
        self.by_path
            .get(path)
            .and_then(|&i| self.entries[i].scalar.as_deref())
    }

    /// Where to point for a problem with `path`: its value when it is a scalar, its key when it is
    /// a container, else the nearest ancestor that exists. Returns the position, the caret width
    /// and the path actually found.
    pub(crate) fn locate(&self, path: &str) -> Option<(Position, usize, &str)> {
        let mut probe = path;
        loop {
            if let Some(&i) = self.by_path.get(probe) {
                let entry = &self.entries[i];
                let (at, width) = match (&entry.scalar, entry.key) {
                    (None, Some(key)) => key,
                    _ => entry.value,
                };
                return Some((at, width, entry.path.as_str()));
            }
            probe = parent(probe)?;
        }
    }

    /// Like [`Self::locate`] but prefers the key (for "this field should not be here").
    pub(crate) fn locate_key(&self, path: &str) -> Option<(Position, usize, &str)> {
        if let Some(&i) = self.by_path.get(path) {
            let entry = &self.entries[i];
            if let Some((at, width)) = entry.key {
                return Some((at, width, entry.path.as_str()));
            }
        }
        self.locate(path)
    }

    /// The field path of whatever is at `at`: a key there, else a value starting there (the
    /// outermost), else the last node starting before it.
    pub fn path_at(&self, at: Position) -> Option<&str> {
        if let Some(entry) = self.entries.iter().find(|e| e.key.map(|k| k.0) == Some(at)) {
            return Some(&entry.path);
        }
        if let Some(entry) = self.entries.iter().find(|e| e.value.0 == at) {
            return Some(&entry.path);
        }
        self.entries
            .iter()
            .rfind(|e| e.key.map_or(e.value.0, |k| k.0) <= at)
            .map(|e| e.path.as_str())
    }

    /// How wide the key or value starting at `at` is, for the caret.
    pub(crate) fn width_at(&self, at: Position) -> usize {
        self.entries
            .iter()
            .find_map(|e| e.key.filter(|k| k.0 == at).map(|k| k.1))
            .or_else(|| {
                self.entries
                    .iter()
                    .find(|e| e.value.0 == at)
                    .map(|e| e.value.1)
            })
            .unwrap_or(1)
    }

    /// The path of the mapping that holds the value starting at `at` (for "missing field").
    pub(crate) fn container_at(&self, at: Position) -> Option<&str> {
        self.entries
            .iter()
            .find(|e| e.value.0 == at && e.scalar.is_none())
            .map(|e| e.path.as_str())
    }

    /// Every recorded node in document order: path, key place, value place and scalar text.
    pub(crate) fn nodes(&self) -> impl Iterator<Item = Node<'_>> {
        self.entries.iter().map(|e| Node {
            path: &e.path,
            key: e.key,
            value: e.value,
            scalar: e.scalar.as_deref(),
            is_map: e.is_map,
        })
    }

    /// Every recorded path with a scalar value, in document order.
    pub(crate) fn scalars(&self) -> impl Iterator<Item = (&str, &str, Position)> {
        self.entries
            .iter()
            .filter_map(|e| Some((e.path.as_str(), e.scalar.as_deref()?, e.value.0)))
    }
}

/// The parent of a field path: `a.b[2]` → `a.b`, `a.b` → `a`, `a` → `` (the root), root → none.
pub(crate) fn parent(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    if path.ends_with(']') {
        // Skip a quoted key that may itself contain `[` or `.`.
        let bracket = if let Some(inner) = path.strip_suffix("\"]") {
            inner
                .rfind("[\"")
                .unwrap_or_else(|| path.rfind('[').unwrap_or(0))
        } else {
            path.rfind('[').unwrap_or(0)
        };
        return Some(&path[..bracket]);
    }
    Some(path.rfind('.').map_or("", |dot| &path[..dot]))
}
