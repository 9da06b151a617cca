//! The knowledge base: articles filed under a category path, their visibility, and full-text search.
//!
//! Every write keeps the FTS5 index `kb_search` (rowid = article id, trigram tokenizer) in step with
//! `kb_articles` inside the same transaction. Search splits the query on whitespace: words of three or more
//! characters go to FTS5 (each quoted, so user input is never FTS5 syntax), shorter words (the trigram
//! tokenizer cannot match them, e.g. the two-character Chinese word "打印") are matched with `LIKE`.
//!
//! Visibility: a `private` article exists only for its author. To anyone else it is absent from every list,
//! search, count and category, and asking for it is "not found", so its existence does not leak.
//!
//! The category `meeting records` (top-level segment) is reserved for meeting minutes written by the server
//! itself: [`create_article`] and [`update_article`] take a flag saying whether the caller may file there.
//! This module does not check roles (the API does: the knowledge base is for staff only).

use serde::{Deserialize, Serialize};

use crate::accounts::Role;
use crate::store::{like_escape, Store, StoreError};

/// The reserved top-level category segment (meeting minutes).
pub const RESERVED_CATEGORY: &str = "meeting records";
/// Longest category path, title, in characters.
pub const MAX_CATEGORY_CHARS: usize = 200;
pub const MAX_TITLE_CHARS: usize = 200;
/// Keywords per article, and characters per keyword.
pub const MAX_KEYWORDS: usize = 32;
pub const MAX_KEYWORD_CHARS: usize = 64;
/// A search query: characters and words (each word is one SQL condition).
pub const MAX_QUERY_CHARS: usize = 200;
pub const MAX_QUERY_WORDS: usize = 16;
/// The trigram tokenizer matches words of at least this many characters.
const FTS_MIN_CHARS: usize = 3;

/// Why a knowledge-base operation failed.
#[derive(Debug, thiserror::Error)]
pub enum KbError {
    /// The input breaks a rule (length, format).
    #[error("{0}")]
    Invalid(String),
    /// The category is reserved for meeting records.
    #[error("the category \"meeting records\" is reserved for meeting minutes: they stay there, public to staff")]
    Reserved,
    /// No such article, or one the caller may not see.
    #[error("no such article")]
    NotFound,
    /// The caller sees the article but may not do this to it.
    #[error("{0}")]
    Forbidden(&'static str),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for KbError {
    fn from(e: sqlx::Error) -> KbError {
        KbError::Store(e.into())
    }
}

/// Who may see an article.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Every staff member.
    #[default]
    Public,
    /// The author only.
    Private,
}

impl Visibility {
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Public => "public",
            Visibility::Private => "private",
        }
    }
}

/// A knowledge-base article.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Article {
    pub id: i64,
    /// Category path, segments separated by `/` (e.g. `hardware/printer`).
    pub category: String,
    pub title: String,
    pub keywords: Vec<String>,
    /// Markdown.
    pub body: String,
    pub visibility: Visibility,
    pub author_id: i64,
    /// The ticket whose solution this article was made from.
    pub source_ticket_id: Option<i64>,
    pub created_at: String,
    pub updated_at: String,
}

/// An article to create.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewArticle {
    /// 1 to 200 characters, segments separated by `/`, none empty.
    pub category: String,
    /// 1 to 200 characters (surrounding spaces are trimmed).
    pub title: String,
    #[serde(default)]
    pub keywords: Vec<String>,
    /// Markdown; may be empty (attachments to follow).
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub visibility: Visibility,
}

/// Changes to an article: fields left out keep their value.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArticleUpdate {
    pub category: Option<String>,
    pub title: Option<String>,
    pub keywords: Option<Vec<String>>,
    pub body: Option<String>,
    pub visibility: Option<Visibility>,
}

/// A category and how many articles visible to the caller it holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct CategoryCount {
    pub category: String,
    pub count: i64,
}

/// One page of a list.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ArticlePage {
    pub items: Vec<Article>,
    /// Matching articles on all pages.
    pub total: i64,
    pub page: u32,
    pub per_page: u32,
}

/// Who is asking.
#[derive(Debug, Clone, Copy)]
pub struct Viewer {
    pub id: i64,
    pub role: Role,
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Full-text query (empty: no search).
    pub q: String,
    /// A category path: the category itself and everything under it.
    pub category: Option<String>,
    /// 1-based.
    pub page: u32,
    pub per_page: u32,
}

type ArticleRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    String,
    String,
);

const ARTICLE_COLUMNS: &str = "a.id, a.category, a.title, a.keywords, a.body, a.visibility, \
     a.author_id, a.source_ticket_id, a.created_at, a.updated_at";

fn article_of(r: ArticleRow) -> Article {
    Article {
        id: r.0,
        category: r.1,
        title: r.2,
        keywords: split_keywords(&r.3),
        body: r.4,
        visibility: if r.5 == "private" {
            Visibility::Private
        } else {
            Visibility::Public
        },
        author_id: r.6,
        source_ticket_id: r.7,
        created_at: r.8,
        updated_at: r.9,
    }
}

/// Keywords are stored joined by ", " (a keyword cannot hold a comma).
fn join_keywords(k: &[String]) -> String {
    k.join(", ")
}

fn split_keywords(s: &str) -> Vec<String> {
    s.split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect()
}

fn invalid(msg: impl Into<String>) -> KbError {
    KbError::Invalid(msg.into())
}

/// The normalised category path (segments trimmed), or why it is refused.
pub fn normalize_category(raw: &str) -> Result<String, KbError> {
    let segs: Vec<&str> = raw.split('/').map(str::trim).collect();
    if segs.iter().any(|s| s.is_empty()) {
        return Err(invalid(
            "category: segments separated by '/', none of them empty (e.g. hardware/printer)",
        ));
    }
    let out = segs.join("/");
    if out.chars().count() > MAX_CATEGORY_CHARS || out.chars().any(char::is_control) {
        return Err(invalid(format!(
            "category: at most {MAX_CATEGORY_CHARS} characters, no control characters"
        )));
    }
    Ok(out)
}

/// Whether a (normalised) category is under the reserved "meeting records".
pub fn is_reserved(category: &str) -> bool {
    category
        .split('/')
        .next()
        .is_some_and(|top| top.to_lowercase() == RESERVED_CATEGORY)
}

fn check_title(raw: &str) -> Result<String, KbError> {
    let t = raw.trim();
    let n = t.chars().count();
    if n == 0 || n > MAX_TITLE_CHARS || t.chars().any(char::is_control) {
        return Err(invalid(format!(
            "title: 1 to {MAX_TITLE_CHARS} characters, no control characters"
        )));
    }
    Ok(t.to_owned())
}

fn check_keywords(raw: &[String]) -> Result<Vec<String>, KbError> {
    if raw.len() > MAX_KEYWORDS {
        return Err(invalid(format!("keywords: at most {MAX_KEYWORDS}")));
    }
    let mut out = Vec::with_capacity(raw.len());
    for k in raw {
        let k = k.trim();
        if k.is_empty() {
            continue;
        }
        if k.chars().count() > MAX_KEYWORD_CHARS
            || k.contains(',')
            || k.chars().any(char::is_control)
        {
            return Err(invalid(format!(
                "keyword {k:?}: at most {MAX_KEYWORD_CHARS} characters, no commas or control characters"
            )));
        }
        out.push(k.to_owned());
    }
    Ok(out)
}

fn check_body(raw: &str) -> Result<(), KbError> {
    if raw.contains('\0') {
        return Err(invalid("body: no NUL characters"));
    }
    Ok(())
}

/// Creates an article by `author_id`; `allow_reserved` lets the server itself file meeting records.
pub async fn create_article(
    store: &Store,
    now: &str,
    author_id: i64,
    new: &NewArticle,
    source_ticket_id: Option<i64>,
    allow_reserved: bool,
) -> Result<Article, KbError> {
    let category = normalize_category(&new.category)?;
    if is_reserved(&category) && !allow_reserved {
        return Err(KbError::Reserved);
    }
    let title = check_title(&new.title)?;
    let keywords = check_keywords(&new.keywords)?;
    check_body(&new.body)?;
    let joined = join_keywords(&keywords);
    let mut tx = store.write().await?;
    let (id,): (i64,) = sqlx::query_as(
        "INSERT INTO kb_articles (category, title, keywords, body, visibility, author_id, \
         source_ticket_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING id",
    )
    .bind(&category)
    .bind(&title)
    .bind(&joined)
    .bind(&new.body)
    .bind(new.visibility.as_str())
    .bind(author_id)
    .bind(source_ticket_id)
    .bind(now)
    .fetch_one(&mut **tx)
    .await?;
    sqlx::query("INSERT INTO kb_search (rowid, title, keywords, body) VALUES ($1, $2, $3, $4)")
        .bind(id)
        .bind(&title)
        .bind(&joined)
        .bind(&new.body)
        .execute(&mut **tx)
        .await?;
    tx.commit().await?;
    Ok(Article {
        id,
        category,
        title,
        keywords,
        body: new.body.clone(),
        visibility: new.visibility,
        author_id,
        source_ticket_id,
        created_at: now.to_owned(),
        updated_at: now.to_owned(),
    })
}

async fn load<'e, E>(exec: E, id: i64) -> Result<Option<Article>, KbError>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    let row: Option<ArticleRow> = sqlx::query_as(&format!(
        "SELECT {ARTICLE_COLUMNS} FROM kb_articles a WHERE a.id = $1"
    ))
    .bind(id)
    .fetch_optional(exec)
    .await?;
    Ok(row.map(article_of))
}

fn visible_to(a: &Article, v: Viewer) -> bool {
    a.visibility == Visibility::Public || a.author_id == v.id
}

/// The article, if `v` may see it.
pub async fn get_article(store: &Store, v: Viewer, id: i64) -> Result<Article, KbError> {
    match load(&store.pool, id).await? {
        Some(a) if visible_to(&a, v) => Ok(a),
        _ => Err(KbError::NotFound),
    }
}

/// Whether `v` may change (or add attachments to) `a`: its author, or a supervisor or higher for a public one.
pub fn may_edit(a: &Article, v: Viewer) -> bool {
    a.author_id == v.id || (a.visibility == Visibility::Public && v.role >= Role::Supervisor)
}

/// Applies `upd` to article `id` as `v`.
pub async fn update_article(
    store: &Store,
    now: &str,
    v: Viewer,
    id: i64,
    upd: &ArticleUpdate,
    allow_reserved: bool,
) -> Result<Article, KbError> {
    let mut tx = store.write().await?;
    let mut a = match load(&mut **tx, id).await? {
        Some(a) if visible_to(&a, v) => a,
        _ => return Err(KbError::NotFound),
    };
    if !may_edit(&a, v) {
        return Err(KbError::Forbidden(
            "only the author or a supervisor may change this article",
        ));
    }
    if let Some(c) = &upd.category {
        let c = normalize_category(c)?;
        // Minutes stay in "meeting records", and nothing else moves in: the meeting links them there.
        let crosses = is_reserved(&c) != is_reserved(&a.category);
        if c != a.category && crosses && !allow_reserved {
            return Err(KbError::Reserved);
        }
        a.category = c;
    }
    if let Some(t) = &upd.title {
        a.title = check_title(t)?;
    }
    if let Some(k) = &upd.keywords {
        a.keywords = check_keywords(k)?;
    }
    if let Some(b) = &upd.body {
        check_body(b)?;
        a.body.clone_from(b);
    }
    if let Some(vis) = upd.visibility {
        if vis != a.visibility && a.author_id != v.id {
            return Err(KbError::Forbidden(
                "only the author may change an article's visibility",
            ));
        }
        if vis != a.visibility && is_reserved(&a.category) && !allow_reserved {
            // Minutes are for all staff: a private one would hide it from those who keep the meeting.
            return Err(KbError::Reserved);
        }
        a.visibility = vis;
    }
    a.updated_at = now.to_owned();
    let joined = join_keywords(&a.keywords);
    sqlx::query(
        "UPDATE kb_articles SET category = $1, title = $2, keywords = $3, body = $4, visibility = $5, \
         updated_at = $6 WHERE id = $7",
    )
    .bind(&a.category)
    .bind(&a.title)
    .bind(&joined)
    .bind(&a.body)
    .bind(a.visibility.as_str())
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?;
    sqlx::query("UPDATE kb_search SET title = $1, keywords = $2, body = $3 WHERE rowid = $4")
        .bind(&a.title)
        .bind(&joined)
        .bind(&a.body)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    tx.commit().await?;
    Ok(a)
}

/// Deletes article `id` (its author, or an administrator for a public one) with its attachment rows; returns
/// the content hashes those rows referred to, for [`crate::attachments::AttachmentStore::collect`].
pub async fn delete_article(store: &Store, v: Viewer, id: i64) -> Result<Vec<String>, KbError> {
    let mut tx = store.write().await?;
    let a = match load(&mut **tx, id).await? {
        Some(a) if visible_to(&a, v) => a,
        _ => return Err(KbError::NotFound),
    };
    if a.author_id != v.id && v.role < Role::Administrator {
        return Err(KbError::Forbidden(
            "only the author or an administrator may delete this article",
        ));
    }
    let hashes: Vec<(String,)> = sqlx::query_as(
        "DELETE FROM attachments WHERE owner_kind = 'article' AND owner_id = $1 RETURNING sha256",
    )
    .bind(id)
    .fetch_all(&mut **tx)
    .await?;
    sqlx::query("DELETE FROM kb_search WHERE rowid = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("DELETE FROM kb_articles WHERE id = $1")
        .bind(id)
        .execute(&mut **tx)
        .await?;
    tx.commit().await?;
    Ok(hashes.into_iter().map(|h| h.0).collect())
}

/// A `LIKE` pattern matching `s` anywhere (used with `ESCAPE '\'`).
pub fn like_contains(s: &str) -> String {
    format!("%{}%", like_escape(s))
}

/// `s` as one FTS5 string: wrapped in double quotes, inner double quotes doubled. Whatever `s` holds,
/// FTS5 reads it as text to match, never as query syntax.
pub fn fts_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

/// A query split into what FTS5 matches and what `LIKE` matches.
#[derive(Debug, PartialEq)]
struct Search {
    /// An FTS5 MATCH expression (quoted words, all required), if any word is long enough.
    fts: Option<String>,
    /// Words too short for the trigram tokenizer.
    short: Vec<String>,
}

fn plan_search(q: &str) -> Result<Option<Search>, KbError> {
    let q = q.trim();
    if q.is_empty() {
        return Ok(None);
    }
    if q.chars().count() > MAX_QUERY_CHARS {
        return Err(invalid(format!("q: at most {MAX_QUERY_CHARS} characters")));
    }
    let words: Vec<String> = q
        .split_whitespace()
        .map(|w| w.chars().filter(|c| !c.is_control()).collect::<String>())
        .filter(|w| !w.is_empty())
        .collect();
    if words.len() > MAX_QUERY_WORDS {
        return Err(invalid(format!("q: at most {MAX_QUERY_WORDS} words")));
    }
    if words.is_empty() {
        return Ok(None);
    }
    let (long, short): (Vec<String>, Vec<String>) = words
        .into_iter()
        .partition(|w| w.chars().count() >= FTS_MIN_CHARS);
    let fts = (!long.is_empty()).then(|| {
        long.iter()
            .map(|w| fts_quote(w))
            .collect::<Vec<_>>()
            .join(" ")
    });
    Ok(Some(Search { fts, short }))
}

enum Arg {
    I(i64),
    S(String),
}

/// Lists the articles `v` may see, filtered and paginated.
pub async fn list_articles(
    store: &Store,
    v: Viewer,
    query: &ListQuery,
) -> Result<ArticlePage, KbError> {
    let search = plan_search(&query.q)?;
    let fts = search.as_ref().and_then(|s| s.fts.clone());
    let mut args = vec![Arg::I(v.id)];
    let mut from = String::from("kb_articles a");
    let mut conds = vec!["(a.visibility = 'public' OR a.author_id = $1)".to_owned()];
    if let Some(m) = fts.clone() {
        from = "kb_search JOIN kb_articles a ON a.id = kb_search.rowid".to_owned();
        args.push(Arg::S(m));
        conds.push(format!("kb_search MATCH ${}", args.len()));
    }
    if let Some(c) = &query.category {
        let c = normalize_category(c)?;
        args.push(Arg::S(format!("{}/%", like_escape(&c))));
        let prefix = args.len();
        args.push(Arg::S(c));
        conds.push(format!(
            "(a.category = ${} OR a.category LIKE ${prefix} ESCAPE '\\')",
            args.len()
        ));
    }
    for w in search.iter().flat_map(|s| s.short.iter()) {
        args.push(Arg::S(like_contains(w)));
        let n = args.len();
        conds.push(format!(
            "(a.title LIKE ${n} ESCAPE '\\' OR a.keywords LIKE ${n} ESCAPE '\\' OR a.body LIKE ${n} ESCAPE '\\')"
        ));
    }
    let filter = format!("FROM {from} WHERE {}", conds.join(" AND "));
    let order = if fts.is_some() {
        "bm25(kb_search), a.id"
    } else {
        "a.updated_at DESC, a.id DESC"
    };

    let count_sql = format!("SELECT COUNT(*) {filter}");
    let mut cq = sqlx::query_as::<_, (i64,)>(&count_sql);
    for a in &args {
        cq = match a {
            Arg::I(i) => cq.bind(*i),
            Arg::S(s) => cq.bind(s.as_str()),
        };
    }
    let (total,) = cq.fetch_one(&store.pool).await?;

    let page = query.page.max(1);
    let per_page = query.per_page.max(1);
    let offset = i64::from(page - 1) * i64::from(per_page);
    let n = args.len();
    let list_sql = format!(
        "SELECT {ARTICLE_COLUMNS} {filter} ORDER BY {order} LIMIT ${} OFFSET ${}",
        n + 1,
        n + 2
    );
    let mut lq = sqlx::query_as::<_, ArticleRow>(&list_sql);
    for a in &args {
        lq = match a {
            Arg::I(i) => lq.bind(*i),
            Arg::S(s) => lq.bind(s.as_str()),
        };
    }
    let rows = lq
        .bind(i64::from(per_page))
        .bind(offset)
        .fetch_all(&store.pool)
        .await?;
    Ok(ArticlePage {
        items: rows.into_iter().map(article_of).collect(),
        total,
        page,
        per_page,
    })
}

/// The categories holding articles `v` may see, with their counts.
pub async fn categories(store: &Store, v: Viewer) -> Result<Vec<CategoryCount>, KbError> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT category, COUNT(*) FROM kb_articles WHERE visibility = 'public' OR author_id = $1 \
         GROUP BY category ORDER BY category",
    )
    .bind(v.id)
    .fetch_all(&store.pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(category, count)| CategoryCount { category, count })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn categories_are_normalised_and_checked() {
        assert_eq!(
            normalize_category(" hardware / printer ").unwrap(),
            "hardware/printer"
        );
        for bad in ["", "/", "a//b", "a/", "/a", "  "] {
            assert!(normalize_category(bad).is_err(), "{bad:?}");
        }
        assert!(normalize_category(&"x".repeat(201)).is_err());
        assert!(normalize_category(&"打".repeat(200)).is_ok());
        assert!(is_reserved("meeting records"));
        assert!(is_reserved("Meeting Records/2024"));
        assert!(!is_reserved("hardware/meeting records"));
    }

    #[test]
    fn user_input_is_escaped_for_like_and_fts() {
        assert_eq!(like_contains("a%b_c\\"), "%a\\%b\\_c\\\\%");
        assert_eq!(fts_quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        let s = plan_search("打印 printer * \"x\" NEAR").unwrap().unwrap();
        assert_eq!(s.short, vec!["打印".to_owned(), "*".to_owned()]);
        assert_eq!(s.fts.as_deref(), Some("\"printer\" \"\"\"x\"\"\" \"NEAR\""));
        assert!(plan_search("   ").unwrap().is_none());
    }

    #[test]
    fn keywords_round_trip() {
        let k = check_keywords(&[" 打印机 ".into(), "".into(), "paper jam".into()]).unwrap();
        assert_eq!(split_keywords(&join_keywords(&k)), k);
        assert!(check_keywords(&["a,b".into()]).is_err());
    }
}
