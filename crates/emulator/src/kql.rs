//! The subset of Kusto (KQL) the Log Analytics query API of the emulator runs, over one table:
//! `AppRequests`. What it takes: `AppRequests`, then any of `| where <predicate>` (comparisons
//! `== != > >= < <=`, `startswith`, `contains`, joined by `and`/`or`, `not(...)`, parentheses; operands are
//! columns, string, number and `true`/`false` literals, `datetime(...)`, `ago(<n><d|h|m|s|ms>)` and
//! `now()`), `| summarize [Name =] count() | countif(<predicate>), ... [by Column, ...]`, `| take N`
//! / `| limit N`. Anything else is refused with the error Log Analytics gives a query it cannot run,
//! never answered approximately.

use std::collections::BTreeMap;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A value of a cell.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Str(String),
    Num(f64),
    Bool(bool),
    /// Unix milliseconds.
    Time(i64),
}

impl Value {
    /// The cell as the query API writes it in `rows`.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Str(s) => s.clone().into(),
            Value::Num(n) if n.fract() == 0.0 && n.abs() < 9e15 => (*n as i64).into(),
            Value::Num(n) => (*n).into(),
            Value::Bool(b) => (*b).into(),
            Value::Time(ms) => {
                OffsetDateTime::from_unix_timestamp_nanos(i128::from(*ms) * 1_000_000)
                    .ok()
                    .and_then(|t| t.format(&Rfc3339).ok())
                    .unwrap_or_default()
                    .into()
            }
        }
    }
}

/// A table: column names with their Kusto types, and rows.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Table {
    pub(crate) columns: Vec<(String, &'static str)>,
    pub(crate) rows: Vec<Vec<Value>>,
}

/// Why a query cannot run: Log Analytics' inner error code (`SyntaxError`, `SemanticError`) and
/// message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct QueryError {
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

fn syntax(message: impl Into<String>) -> QueryError {
    QueryError {
        code: "SyntaxError",
        message: message.into(),
    }
}

fn semantic(message: impl Into<String>) -> QueryError {
    QueryError {
        code: "SemanticError",
        message: message.into(),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Num(f64),
    Op(&'static str),
}

fn tokenize(text: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() {
            i += 1;
        } else if c == '/' && chars.get(i + 1) == Some(&'/') {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
        } else if c == '"' || c == '\'' {
            let end = chars[i + 1..].iter().position(|&d| d == c).ok_or_else(|| {
                syntax("Query could not be parsed: an unterminated string literal")
            })?;
            out.push(Token::Str(chars[i + 1..i + 1 + end].iter().collect()));
            i += end + 2;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            let text: String = chars[start..i].iter().collect();
            out.push(Token::Num(text.parse().map_err(|_| {
                syntax(format!("Query could not be parsed at '{text}'"))
            })?));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            // A datetime literal is taken raw (`datetime(2026-12-05T10:00:00Z)`): its digits are
            // no numbers.
            if word == "datetime" && chars.get(i) == Some(&'(') {
                let end = chars[i..]
                    .iter()
                    .position(|&d| d == ')')
                    .ok_or_else(|| syntax("Query could not be parsed: an unterminated datetime"))?;
                let raw: String = chars[i + 1..i + end].iter().collect();
                out.extend([
                    Token::Ident(word),
                    Token::Op("("),
                    Token::Str(raw.trim().to_owned()),
                    Token::Op(")"),
                ]);
                i += end + 1;
                continue;
            }
            out.push(Token::Ident(word));
        } else {
            let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
            let op = ["==", "!=", ">=", "<=", ".."]
                .into_iter()
                .find(|o| *o == two)
                .or_else(|| {
                    ["|", "(", ")", ",", "=", ">", "<", "-", ":", "."]
                        .into_iter()
                        .find(|o| o.starts_with(c))
                })
                .ok_or_else(|| syntax(format!("Query could not be parsed at '{c}'")))?;
            i += op.len();
            out.push(Token::Op(op));
        }
    }
    Ok(out)
}

/// An expression of a `where` or `countif`.
#[derive(Debug, Clone, PartialEq)]
enum Expr {
    Column(String),
    Lit(Value),
    Compare(Box<Expr>, &'static str, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
}

struct Parser<'a> {
    tokens: &'a [Token],
    at: usize,
    now_ms: i64,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn expect_op(&mut self, op: &str) -> Result<(), QueryError> {
        match self.next() {
            Some(Token::Op(o)) if o == op => Ok(()),
            other => Err(syntax(format!(
                "Query could not be parsed: expected '{op}', found {}",
                describe(other.as_ref())
            ))),
        }
    }

    fn ident_is(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Ident(w)) if w == word)
    }

    fn expr(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.and()?;
        while self.ident_is("or") {
            self.at += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.comparison()?;
        while self.ident_is("and") {
            self.at += 1;
            left = Expr::And(Box::new(left), Box::new(self.comparison()?));
        }
        Ok(left)
    }

    fn comparison(&mut self) -> Result<Expr, QueryError> {
        let left = self.operand()?;
        let op = match self.peek() {
            Some(Token::Op(o @ ("==" | "!=" | ">=" | "<=" | ">" | "<"))) => *o,
            Some(Token::Ident(w)) if w == "startswith" => "startswith",
            Some(Token::Ident(w)) if w == "contains" => "contains",
            _ => return Ok(left),
        };
        self.at += 1;
        let right = self.operand()?;
        Ok(Expr::Compare(Box::new(left), op, Box::new(right)))
    }

    fn operand(&mut self) -> Result<Expr, QueryError> {
        match self.next() {
            Some(Token::Op("(")) => {
                let e = self.expr()?;
                self.expect_op(")")?;
                Ok(e)
            }
            Some(Token::Str(s)) => Ok(Expr::Lit(Value::Str(s))),
            Some(Token::Num(n)) => Ok(Expr::Lit(Value::Num(n))),
            Some(Token::Op("-")) => match self.next() {
                Some(Token::Num(n)) => Ok(Expr::Lit(Value::Num(-n))),
                other => Err(syntax(format!(
                    "Query could not be parsed at {}",
                    describe(other.as_ref())
                ))),
            },
            Some(Token::Ident(w)) => match w.as_str() {
                "true" => Ok(Expr::Lit(Value::Bool(true))),
                "false" => Ok(Expr::Lit(Value::Bool(false))),
                "not" => {
                    self.expect_op("(")?;
                    let e = self.expr()?;
                    self.expect_op(")")?;
                    Ok(Expr::Not(Box::new(e)))
                }
                "now" => {
                    self.expect_op("(")?;
                    self.expect_op(")")?;
                    Ok(Expr::Lit(Value::Time(self.now_ms)))
                }
                "ago" => {
                    self.expect_op("(")?;
                    let span = self.timespan()?;
                    self.expect_op(")")?;
                    Ok(Expr::Lit(Value::Time(self.now_ms - span)))
                }
                "datetime" => {
                    self.expect_op("(")?;
                    let Some(Token::Str(text)) = self.next() else {
                        return Err(syntax("Query could not be parsed: expected a datetime"));
                    };
                    self.expect_op(")")?;
                    let t = OffsetDateTime::parse(&text, &Rfc3339).map_err(|_| {
                        syntax(format!(
                            "Query could not be parsed: invalid datetime '{text}'"
                        ))
                    })?;
                    Ok(Expr::Lit(Value::Time(
                        i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX),
                    )))
                }
                _ if matches!(self.peek(), Some(Token::Op("("))) => Err(semantic(format!(
                    "Failed to resolve scalar expression named '{w}': the emulator runs count(), countif(), ago(), now() and datetime() only"
                ))),
                _ => Ok(Expr::Column(w)),
            },
            other => Err(syntax(format!(
                "Query could not be parsed at {}",
                describe(other.as_ref())
            ))),
        }
    }

    /// `5m`, `30s`, `1h`, `2d`, `500ms`, in milliseconds.
    fn timespan(&mut self) -> Result<i64, QueryError> {
        let (Some(Token::Num(n)), Some(Token::Ident(unit))) = (self.next(), self.next()) else {
            return Err(syntax(
                "Query could not be parsed: expected a timespan such as 5m",
            ));
        };
        let ms = match unit.as_str() {
            "d" => 86_400_000.0,
            "h" => 3_600_000.0,
            "m" => 60_000.0,
            "s" => 1_000.0,
            "ms" => 1.0,
            _ => {
                return Err(syntax(format!(
                    "Query could not be parsed: unknown timespan unit '{unit}'"
                )));
            }
        };
        Ok((n * ms) as i64)
    }
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 {
        format!("{}", n as i64)
    } else {
        n.to_string()
    }
}

fn describe(token: Option<&Token>) -> String {
    match token {
        None => "the end of the query".into(),
        Some(Token::Ident(s)) => format!("'{s}'"),
        Some(Token::Str(s)) => format!("\"{s}\""),
        Some(Token::Num(n)) => format!("'{}'", format_number(*n)),
        Some(Token::Op(o)) => format!("'{o}'"),
    }
}

fn cell(table: &Table, row: &[Value], expr: &Expr) -> Result<Option<Value>, QueryError> {
    Ok(match expr {
        Expr::Lit(v) => Some(v.clone()),
        Expr::Column(name) => {
            let index = table
                .columns
                .iter()
                .position(|(c, _)| c == name)
                .ok_or_else(|| {
                    semantic(format!(
                        "Failed to resolve column or scalar expression named '{name}'"
                    ))
                })?;
            Some(row[index].clone())
        }
        Expr::Compare(..) | Expr::And(..) | Expr::Or(..) | Expr::Not(..) => {
            Some(Value::Bool(holds(table, row, expr)?))
        }
    })
}

fn holds(table: &Table, row: &[Value], expr: &Expr) -> Result<bool, QueryError> {
    Ok(match expr {
        Expr::And(a, b) => holds(table, row, a)? && holds(table, row, b)?,
        Expr::Or(a, b) => holds(table, row, a)? || holds(table, row, b)?,
        Expr::Not(e) => !holds(table, row, e)?,
        Expr::Compare(a, op, b) => {
            let (Some(a), Some(b)) = (cell(table, row, a)?, cell(table, row, b)?) else {
                return Ok(false);
            };
            let ordering = match (&a, &b) {
                (Value::Str(x), Value::Str(y)) => match *op {
                    "startswith" => return Ok(x.to_lowercase().starts_with(&y.to_lowercase())),
                    "contains" => return Ok(x.to_lowercase().contains(&y.to_lowercase())),
                    _ => x.cmp(y),
                },
                (Value::Num(x), Value::Num(y)) => x.total_cmp(y),
                (Value::Time(x), Value::Time(y)) => x.cmp(y),
                (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
                _ => {
                    return Err(semantic(format!(
                        "Cannot compare values of different types with '{op}'"
                    )));
                }
            };
            match *op {
                "==" => ordering.is_eq(),
                "!=" => ordering.is_ne(),
                ">" => ordering.is_gt(),
                ">=" => ordering.is_ge(),
                "<" => ordering.is_lt(),
                "<=" => ordering.is_le(),
                _ => return Err(semantic(format!("'{op}' applies to strings only"))),
            }
        }
        Expr::Column(_) | Expr::Lit(_) => match cell(table, row, expr)? {
            Some(Value::Bool(b)) => b,
            _ => return Err(semantic("A predicate must be a boolean expression")),
        },
    })
}

/// One aggregation of a `summarize`.
struct Aggregate {
    name: String,
    filter: Option<Expr>,
}

/// Runs `query` over `source` (the `AppRequests` table); `now_ms` is what `now()` and `ago()` use.
pub(crate) fn run(query: &str, source: Table, now_ms: i64) -> Result<Table, QueryError> {
    let tokens = tokenize(query)?;
    let mut stages = tokens.split(|t| *t == Token::Op("|"));
    let first = stages.next().unwrap_or_default();
    match first {
        [Token::Ident(name)] if name == "AppRequests" => {}
        [Token::Ident(name)] => {
            return Err(semantic(format!(
                "Failed to resolve table or column expression named '{name}': the emulator's workspace holds AppRequests only"
            )));
        }
        _ => {
            return Err(syntax(
                "Query could not be parsed: a query starts with a table name",
            ));
        }
    }
    let mut table = source;
    for stage in stages {
        let mut p = Parser {
            tokens: stage,
            at: 0,
            now_ms,
        };
        let Some(Token::Ident(op)) = p.next() else {
            return Err(syntax(
                "Query could not be parsed: expected an operator after '|'",
            ));
        };
        table = match op.as_str() {
            "where" => {
                let predicate = p.expr()?;
                finish(&p)?;
                let mut kept = Vec::new();
                for row in table.rows.iter() {
                    if holds(&table, row, &predicate)? {
                        kept.push(row.clone());
                    }
                }
                Table {
                    columns: table.columns,
                    rows: kept,
                }
            }
            "take" | "limit" => {
                let Some(Token::Num(n)) = p.next() else {
                    return Err(syntax(format!(
                        "Query could not be parsed: '{op}' takes a number"
                    )));
                };
                finish(&p)?;
                let mut rows = table.rows;
                rows.truncate(n as usize);
                Table {
                    columns: table.columns,
                    rows,
                }
            }
            "summarize" => summarize(&mut p, &table)?,
            other => {
                return Err(semantic(format!(
                    "The operator '{other}' is not supported by the emulator: it runs where, summarize, take and limit"
                )));
            }
        };
    }
    Ok(table)
}

fn finish(p: &Parser<'_>) -> Result<(), QueryError> {
    match p.peek() {
        None => Ok(()),
        t => Err(syntax(format!(
            "Query could not be parsed at {}",
            describe(t)
        ))),
    }
}

fn summarize(p: &mut Parser<'_>, table: &Table) -> Result<Table, QueryError> {
    let mut aggregates = Vec::new();
    loop {
        let mut name = None;
        if let (Some(Token::Ident(n)), Some(Token::Op("="))) =
            (p.tokens.get(p.at), p.tokens.get(p.at + 1))
        {
            name = Some(n.clone());
            p.at += 2;
        }
        let Some(Token::Ident(function)) = p.next() else {
            return Err(syntax(
                "Query could not be parsed: expected an aggregation after 'summarize'",
            ));
        };
        p.expect_op("(")?;
        let filter = match function.as_str() {
            "count" => None,
            "countif" => Some(p.expr()?),
            other => {
                return Err(semantic(format!(
                    "The aggregation '{other}' is not supported by the emulator: it runs count() and countif()"
                )));
            }
        };
        p.expect_op(")")?;
        aggregates.push(Aggregate {
            name: name.unwrap_or_else(|| format!("{function}_")),
            filter,
        });
        if matches!(p.peek(), Some(Token::Op(","))) {
            p.at += 1;
            continue;
        }
        break;
    }
    let mut by = Vec::new();
    if p.ident_is("by") {
        p.at += 1;
        loop {
            let Some(Token::Ident(column)) = p.next() else {
                return Err(syntax(
                    "Query could not be parsed: expected a column after 'by'",
                ));
            };
            let index = table
                .columns
                .iter()
                .position(|(c, _)| *c == column)
                .ok_or_else(|| {
                    semantic(format!(
                        "Failed to resolve column or scalar expression named '{column}'"
                    ))
                })?;
            by.push(index);
            if matches!(p.peek(), Some(Token::Op(","))) {
                p.at += 1;
                continue;
            }
            break;
        }
    }
    finish(p)?;
    // Groups keyed by their `by` values' text, in the order they first appear.
    let mut groups: BTreeMap<Vec<String>, (usize, Vec<Value>, Vec<f64>)> = BTreeMap::new();
    for (n, row) in table.rows.iter().enumerate() {
        let key: Vec<String> = by.iter().map(|&i| format!("{:?}", row[i])).collect();
        let values: Vec<Value> = by.iter().map(|&i| row[i].clone()).collect();
        let entry = groups
            .entry(key)
            .or_insert_with(|| (n, values, vec![0.0; aggregates.len()]));
        for (k, aggregate) in aggregates.iter().enumerate() {
            let counted = match &aggregate.filter {
                None => true,
                Some(f) => holds(table, row, f)?,
            };
            if counted {
                entry.2[k] += 1.0;
            }
        }
    }
    // With no `by`, Kusto answers one row also when nothing matched.
    if by.is_empty() && groups.is_empty() {
        groups.insert(Vec::new(), (0, Vec::new(), vec![0.0; aggregates.len()]));
    }
    let mut rows: Vec<(usize, Vec<Value>)> = groups
        .into_values()
        .map(|(first, mut values, counts)| {
            values.extend(counts.into_iter().map(Value::Num));
            (first, values)
        })
        .collect();
    rows.sort_by_key(|(first, _)| *first);
    let mut columns: Vec<(String, &'static str)> =
        by.iter().map(|&i| table.columns[i].clone()).collect();
    columns.extend(aggregates.iter().map(|a| (a.name.clone(), "long")));
    Ok(Table {
        columns,
        rows: rows.into_iter().map(|(_, r)| r).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn requests() -> Table {
        let row = |role: &str, code: &str, ok: bool, ms: f64, at: i64| {
            vec![
                Value::Time(at),
                Value::Str(role.into()),
                Value::Str(code.into()),
                Value::Bool(ok),
                Value::Num(ms),
            ]
        };
        Table {
            columns: vec![
                ("TimeGenerated".into(), "datetime"),
                ("AppRoleName".into(), "string"),
                ("ResultCode".into(), "string"),
                ("Success".into(), "bool"),
                ("DurationMs".into(), "real"),
            ],
            rows: vec![
                row("web", "200", true, 5.0, 1_000),
                row("web-staging", "500", false, 7.0, 2_000),
                row("web-staging", "200", true, 3.0, 3_000),
                row("web-staging", "503", false, 9.0, 60_000),
            ],
        }
    }

    #[test]
    fn summarize_counts_by_a_column_with_countif() {
        let t = run(
            "AppRequests | summarize Requests = count(), Failed = countif(Success == false) by AppRoleName",
            requests(),
            100_000,
        )
        .unwrap();
        assert_eq!(
            t.columns,
            [
                ("AppRoleName".to_owned(), "string"),
                ("Requests".to_owned(), "long"),
                ("Failed".to_owned(), "long")
            ]
        );
        assert_eq!(
            t.rows,
            [
                vec![Value::Str("web".into()), Value::Num(1.0), Value::Num(0.0)],
                vec![
                    Value::Str("web-staging".into()),
                    Value::Num(3.0),
                    Value::Num(2.0)
                ],
            ]
        );
    }

    #[test]
    fn where_filters_on_time_strings_and_numbers() {
        let t = run(
            "AppRequests | where TimeGenerated > ago(99s) and AppRoleName == 'web-staging' | where ResultCode startswith \"5\" or DurationMs < 4 | summarize count()",
            requests(),
            100_000,
        )
        .unwrap();
        assert_eq!(t.rows, [vec![Value::Num(3.0)]]);
        let t = run(
            "AppRequests | where TimeGenerated >= datetime(1970-01-01T00:00:02Z) and not(Success) | take 1",
            requests(),
            0,
        )
        .unwrap();
        assert_eq!(t.rows.len(), 1);
        assert_eq!(t.rows[0][2], Value::Str("500".into()));
        // Nothing matched, no `by`: one row of zeros, as Kusto answers.
        let t = run(
            "AppRequests | where DurationMs > 100 | summarize n = count()",
            requests(),
            0,
        )
        .unwrap();
        assert_eq!(t.rows, [vec![Value::Num(0.0)]]);
    }

    #[test]
    fn anything_outside_the_subset_is_refused_with_its_kind() {
        let err = |q: &str| run(q, requests(), 0).unwrap_err();
        assert_eq!(err("requests | count").code, "SemanticError");
        assert!(err("AppTraces").message.contains("AppRequests only"));
        assert_eq!(err("AppRequests | project Name").code, "SemanticError");
        assert_eq!(
            err("AppRequests | summarize avg(DurationMs)").code,
            "SemanticError"
        );
        assert_eq!(err("AppRequests | where Nope == 1").code, "SemanticError");
        assert_eq!(
            err("AppRequests | where AppRoleName == 'x").code,
            "SyntaxError"
        );
        assert_eq!(err("AppRequests | where (Success").code, "SyntaxError");
        assert_eq!(
            err("AppRequests | where Success == 1").code,
            "SemanticError"
        );
    }
}
