//! What a query may cost, decided before any resolver runs and in time linear in the
//! document: each fragment is measured once and its measure reused wherever it is spread, so
//! a document of fragments that spread each other many times over costs no more to analyse
//! than its text. A connection field costs `first` × its selection, so nested lists
//! multiply; introspection has a depth and list-nesting rule of its own so that the standard
//! introspection query passes while `fields { type { fields { … } } }` chains do not.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering as AtomicOrdering};
use std::sync::{Arc, Mutex};

use lru::LruCache;

use async_graphql::parser::types::{
    BaseType, ExecutableDocument, OperationDefinition, OperationType, Selection, SelectionSet,
    ServiceDocument, Type, TypeKind, TypeSystemDefinition,
};
use async_graphql::parser::Positioned;
use async_graphql::{
    ErrorExtensionValues, ErrorExtensions, Name, Pos, Request, ServerError, ServerResult, Value,
    Variables,
};
use async_graphql_value::Value as ParserValue;

use crate::config::GraphqlSettings;
use crate::error::AppError;

/// The code every limit answers with.
pub const QUERY_TOO_COMPLEX: &str = "QUERY_TOO_COMPLEX";

/// What a plain list (one without `first`) is assumed to hold when costing it.
pub const PLAIN_LIST_FACTOR: u64 = 10;

/// How many list fields one introspection path may nest: the standard query nests three
/// (`types → fields → args`).
pub const MAX_INTROSPECTION_LISTS: u32 = 3;

const INTROSPECTION_LISTS: &[&str] = &[
    "types",
    "fields",
    "args",
    "inputFields",
    "interfaces",
    "possibleTypes",
    "enumValues",
    "directives",
];

/// The default of `first` when a connection field is given none, and its ceiling.
const DEFAULT_FIRST: u64 = 20;
const MAX_FIRST: u64 = 100;

/// The limits, taken from the settings.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_document_bytes: usize,
    pub max_fragment_spreads: usize,
    pub max_cost: u64,
    pub max_complexity: u64,
    pub max_depth: u32,
    pub max_recursive_depth: u32,
    pub max_introspection_depth: u32,
    pub max_aliases: u64,
    pub max_directives: usize,
}

impl From<&GraphqlSettings> for Limits {
    fn from(s: &GraphqlSettings) -> Self {
        Limits {
            max_document_bytes: s.max_document_bytes,
            max_fragment_spreads: s.max_fragment_spreads,
            max_cost: s.max_cost,
            max_complexity: s.max_complexity as u64,
            max_depth: s.max_depth as u32,
            max_recursive_depth: s.max_recursive_depth as u32,
            max_introspection_depth: s.max_introspection_depth as u32,
            max_aliases: s.max_aliases as u64,
            max_directives: s.max_directives,
        }
    }
}

/// One field of the schema, as far as costing needs it.
#[derive(Debug, Clone)]
struct FieldShape {
    /// The named type the field returns (lists and non-null unwrapped).
    returns: String,
    is_list: bool,
    /// The default of its `first` argument, when it has one: a connection.
    first: Option<Option<u64>>,
}

/// Every object and interface field of the schema, read from its SDL.
#[derive(Debug, Default)]
pub struct SchemaShape {
    types: HashMap<String, HashMap<String, FieldShape>>,
}

fn unwrap_type(ty: &Type) -> (String, bool) {
    match &ty.base {
        BaseType::Named(name) => (name.to_string(), false),
        BaseType::List(inner) => (unwrap_type(inner).0, true),
    }
}

impl SchemaShape {
    pub fn from_sdl(sdl: &str) -> anyhow::Result<Self> {
        let doc: ServiceDocument = async_graphql::parser::parse_schema(sdl)?;
        let mut types = HashMap::new();
        for def in doc.definitions {
            let TypeSystemDefinition::Type(ty) = def else {
                continue;
            };
            let fields = match &ty.node.kind {
                TypeKind::Object(o) => &o.fields,
                TypeKind::Interface(i) => &i.fields,
                _ => continue,
            };
            let fields = fields
                .iter()
                .map(|f| {
                    let (returns, is_list) = unwrap_type(&f.node.ty.node);
                    let first = f
                        .node
                        .arguments
                        .iter()
                        .find(|a| a.node.name.node == "first")
                        .map(|a| {
                            a.node.default_value.as_ref().and_then(|v| match &v.node {
                                Value::Number(n) => n.as_u64(),
                                _ => None,
                            })
                        });
                    (
                        f.node.name.node.to_string(),
                        FieldShape {
                            returns,
                            is_list,
                            first,
                        },
                    )
                })
                .collect();
            types.insert(ty.node.name.node.to_string(), fields);
        }
        Ok(SchemaShape { types })
    }

    fn field(&self, parent: Option<&str>, name: &str) -> Option<&FieldShape> {
        self.types.get(parent?)?.get(name)
    }
}

/// What a selection set reaches, fully expanded.
#[derive(Debug, Clone, Copy, Default)]
struct Measure {
    /// Selections walked (fields, spreads, inline fragments): what any walk of the
    /// expanded document costs.
    walked: u64,
    /// Fields reached, unweighted: the complexity.
    fields: u64,
    /// Fields reached, each list multiplied by what it may hold.
    cost: u64,
    aliases: u64,
    /// Nested fields, introspection excluded.
    depth: u32,
    /// Nested selection sets, spreads and inline fragments included.
    nesting: u32,
    /// Depth of introspection subtrees, counted from their root field.
    introspection_depth: u32,
    introspection_lists: u32,
    max_directives: usize,
}

impl Measure {
    fn add(&mut self, other: Measure) {
        self.walked = self.walked.saturating_add(other.walked);
        self.fields = self.fields.saturating_add(other.fields);
        self.cost = self.cost.saturating_add(other.cost);
        self.aliases = self.aliases.saturating_add(other.aliases);
        self.depth = self.depth.max(other.depth);
        self.nesting = self.nesting.max(other.nesting);
        self.introspection_depth = self.introspection_depth.max(other.introspection_depth);
        self.introspection_lists = self.introspection_lists.max(other.introspection_lists);
        self.max_directives = self.max_directives.max(other.max_directives);
    }
}

fn too_complex(message: String, pos: Option<Pos>, cost: Option<u64>) -> ServerError {
    let mut err = ServerError::new(format!("Query is too complex: {message}"), pos);
    let mut ext = ErrorExtensionValues::default();
    ext.set("code", QUERY_TOO_COMPLEX);
    if let Some(cost) = cost {
        ext.set("cost", cost);
    }
    err.extensions = Some(ext);
    err
}

enum Memo {
    InProgress,
    Done(Measure),
}

struct Analyser<'a> {
    shape: &'a SchemaShape,
    doc: &'a ExecutableDocument,
    variables: &'a Variables,
    defaults: HashMap<&'a str, &'a Value>,
    fragments: HashMap<&'a str, Memo>,
    /// Whether a `first` read a variable: when none did, the document costs the same
    /// whatever the variables.
    read_variables: std::cell::Cell<bool>,
}

impl<'a> Analyser<'a> {
    fn first_of(&self, args: &[(Positioned<Name>, Positioned<ParserValue>)]) -> Option<u64> {
        let value = &args.iter().find(|(n, _)| n.node == "first")?.1.node;
        let resolved = value.clone().into_const_with(|var| {
            self.read_variables.set(true);
            self.variables
                .get(&var)
                .or_else(|| self.defaults.get(var.as_str()).copied())
                .cloned()
                .ok_or(())
        });
        let n = match resolved {
            Ok(Value::Number(n)) => n.as_u64(),
            _ => None,
        };
        // A negative or absurd `first` is refused by the resolver with its own message; for
        // costing it counts as the most a page may hold.
        Some(n.unwrap_or(MAX_FIRST).clamp(1, MAX_FIRST))
    }

    fn set(
        &mut self,
        set: &'a SelectionSet,
        parent: Option<&str>,
        introspection: bool,
    ) -> ServerResult<Measure> {
        let mut total = Measure::default();
        for item in &set.items {
            let m = match &item.node {
                Selection::Field(f) => {
                    let f = &f.node;
                    let name = f.name.node.as_str();
                    let children = &f.selection_set.node;
                    let enters_introspection =
                        !introspection && (name == "__schema" || name == "__type");
                    let inside = introspection || enters_introspection;
                    let shape = if inside {
                        None
                    } else {
                        self.shape.field(parent, name)
                    };
                    let child = if children.items.is_empty() {
                        Measure::default()
                    } else {
                        self.set(children, shape.map(|s| s.returns.as_str()), inside)?
                    };
                    let factor = match shape {
                        Some(s) if s.first.is_some() => self
                            .first_of(&f.arguments)
                            .unwrap_or_else(|| s.first.flatten().unwrap_or(DEFAULT_FIRST)),
                        // A connection's `nodes` and `edges` are what its `first` counted.
                        Some(s)
                            if s.is_list && !parent.is_some_and(|p| p.ends_with("Connection")) =>
                        {
                            PLAIN_LIST_FACTOR
                        }
                        _ => 1,
                    };
                    let list_here = u32::from(inside && INTROSPECTION_LISTS.contains(&name));
                    Measure {
                        walked: child.walked.saturating_add(1),
                        fields: child.fields.saturating_add(1),
                        cost: child.cost.saturating_add(1).saturating_mul(factor),
                        aliases: child.aliases + u64::from(f.alias.is_some()),
                        depth: if inside { 0 } else { child.depth + 1 },
                        nesting: if children.items.is_empty() {
                            0
                        } else {
                            child.nesting + 1
                        },
                        introspection_depth: if enters_introspection {
                            child.depth.max(child.introspection_depth) + 1
                        } else if inside {
                            child.introspection_depth + 1
                        } else {
                            child.introspection_depth
                        },
                        introspection_lists: if inside {
                            child.introspection_lists + list_here
                        } else {
                            child.introspection_lists
                        },
                        max_directives: child.max_directives.max(f.directives.len()),
                    }
                }
                Selection::InlineFragment(i) => {
                    let on = i
                        .node
                        .type_condition
                        .as_ref()
                        .map(|t| t.node.on.node.as_str());
                    let child =
                        self.set(&i.node.selection_set.node, on.or(parent), introspection)?;
                    Measure {
                        walked: child.walked.saturating_add(1),
                        nesting: child.nesting + 1,
                        ..child
                    }
                }
                Selection::FragmentSpread(s) => {
                    let name = s.node.fragment_name.node.as_str();
                    let child = self.fragment(name, introspection, item.pos)?;
                    Measure {
                        walked: child.walked.saturating_add(1),
                        nesting: child.nesting + 1,
                        ..child
                    }
                }
            };
            total.add(m);
        }
        Ok(total)
    }

    /// A fragment's measure depends only on the fragment (its type condition gives the
    /// parent), so it is computed once. Introspection fragments are measured inside
    /// introspection: a fragment on `__Type` only ever applies there.
    fn fragment(&mut self, name: &'a str, introspection: bool, pos: Pos) -> ServerResult<Measure> {
        match self.fragments.get(name) {
            Some(Memo::Done(m)) => return Ok(*m),
            Some(Memo::InProgress) => {
                return Err(too_complex(
                    format!("fragment `{name}` spreads itself"),
                    Some(pos),
                    None,
                ))
            }
            None => {}
        }
        // An unknown fragment is left for validation to name.
        let Some((key, def)) = self.doc.fragments.get_key_value(name) else {
            return Ok(Measure::default());
        };
        let key = key.as_str();
        self.fragments.insert(key, Memo::InProgress);
        let on = def.node.type_condition.node.on.node.as_str();
        let inside = introspection || on.starts_with("__");
        let m = self.set(&def.node.selection_set.node, Some(on), inside)?;
        self.fragments.insert(key, Memo::Done(m));
        Ok(m)
    }
}

/// Nesting of brackets in the document text, strings and comments skipped: the parser
/// recurses on it, so it is bounded before parsing.
fn text_nesting(query: &str) -> usize {
    let bytes = query.as_bytes();
    let (mut depth, mut max, mut i) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 2;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => {
                depth += 1;
                max = max.max(depth);
            }
            b'}' | b']' | b')' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    max
}

/// The checks on the document's text, made before parsing it: its size, and the nesting of
/// its brackets, on which the parser recurses.
pub fn check_text(limits: &Limits, query: &str) -> ServerResult<()> {
    if query.len() > limits.max_document_bytes {
        return Err(too_complex(
            format!(
                "the document is {} bytes, more than {}",
                query.len(),
                limits.max_document_bytes
            ),
            None,
            None,
        ));
    }
    let nesting = text_nesting(query);
    // The text nests one level more than the selections it holds, and arguments nest
    // values too; twice the selection limit leaves room for both.
    if nesting > 2 * limits.max_recursive_depth as usize {
        return Err(too_complex(
            format!("the document nests brackets {nesting} deep"),
            None,
            None,
        ));
    }
    Ok(())
}

/// Measures a parsed document against the limits.
pub fn check_document(
    limits: &Limits,
    shape: &SchemaShape,
    doc: &ExecutableDocument,
    variables: &Variables,
) -> ServerResult<u64> {
    measure_document(limits, shape, doc, variables).0
}

/// [`check_document`], and whether its answer holds for any variables (no `first` read
/// one).
fn measure_document(
    limits: &Limits,
    shape: &SchemaShape,
    doc: &ExecutableDocument,
    variables: &Variables,
) -> (ServerResult<u64>, bool) {
    let spreads = doc
        .fragments
        .values()
        .map(|f| count_spreads(&f.node.selection_set.node))
        .chain(
            doc.operations
                .iter()
                .map(|(_, op)| count_spreads(&op.node.selection_set.node)),
        )
        .sum::<usize>();
    if spreads > limits.max_fragment_spreads {
        let refused = too_complex(
            format!(
                "it has {spreads} fragment spreads, more than {}",
                limits.max_fragment_spreads
            ),
            None,
            None,
        );
        return (Err(refused), true);
    }
    let mut analyser = Analyser {
        shape,
        doc,
        variables,
        defaults: HashMap::new(),
        fragments: HashMap::new(),
        read_variables: std::cell::Cell::new(false),
    };
    let measured = measure_operations(&mut analyser, doc);
    let fixed = !analyser.read_variables.get();
    (
        measured.and_then(|total| within_limits(limits, &total)),
        fixed,
    )
}

/// The document's cost, when its measure keeps within every limit.
fn within_limits(limits: &Limits, total: &Measure) -> ServerResult<u64> {
    let cost = total.cost;
    let checks: [(bool, String); 8] = [
        (
            cost > limits.max_cost,
            format!("its cost is {cost}, more than {}", limits.max_cost),
        ),
        (
            total.fields > limits.max_complexity,
            format!(
                "it reaches {} fields, more than {}",
                total.fields, limits.max_complexity
            ),
        ),
        (
            total.depth > limits.max_depth,
            format!(
                "it is nested too deep ({} levels, at most {})",
                total.depth, limits.max_depth
            ),
        ),
        (
            total.nesting > limits.max_recursive_depth,
            format!(
                "its selections are nested {} levels, at most {}",
                total.nesting, limits.max_recursive_depth
            ),
        ),
        (
            total.introspection_depth > limits.max_introspection_depth,
            format!(
                "its introspection is nested too deep ({} levels, at most {})",
                total.introspection_depth, limits.max_introspection_depth
            ),
        ),
        (
            total.introspection_lists > MAX_INTROSPECTION_LISTS,
            format!(
                "its introspection nests {} lists, at most {MAX_INTROSPECTION_LISTS}",
                total.introspection_lists
            ),
        ),
        (
            total.aliases > limits.max_aliases,
            format!(
                "it uses {} aliases, more than {}",
                total.aliases, limits.max_aliases
            ),
        ),
        (
            total.max_directives > limits.max_directives,
            format!(
                "a field carries {} directives, more than {}",
                total.max_directives, limits.max_directives
            ),
        ),
    ];
    if let Some((_, message)) = checks.into_iter().find(|(over, _)| *over) {
        return Err(too_complex(message, None, Some(cost)));
    }
    Ok(cost)
}

/// Every operation's measure, added up.
fn measure_operations<'a>(
    analyser: &mut Analyser<'a>,
    doc: &'a ExecutableDocument,
) -> ServerResult<Measure> {
    let mut total = Measure::default();
    for (_, op) in doc.operations.iter() {
        let op = &op.node;
        analyser.defaults = op
            .variable_definitions
            .iter()
            .filter_map(|v| {
                v.node
                    .default_value
                    .as_ref()
                    .map(|d| (v.node.name.node.as_str(), &d.node))
            })
            .collect();
        let root = match op.ty {
            OperationType::Query => "Query",
            OperationType::Mutation => "Mutation",
            OperationType::Subscription => "Subscription",
        };
        let m = analyser.set(&op.selection_set.node, Some(root), false)?;
        total.add(m);
    }
    Ok(total)
}

fn count_spreads(set: &SelectionSet) -> usize {
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(f) => count_spreads(&f.node.selection_set.node),
            Selection::InlineFragment(i) => count_spreads(&i.node.selection_set.node),
            Selection::FragmentSpread(_) => 1,
        })
        .sum()
}

/// The largest document text kept in the cache.
const MAX_CACHED_DOCUMENT_BYTES: usize = 4096;

/// Admits each request before async-graphql parses and validates it (both of which walk
/// every spread path), and hands the parsed document on so it is parsed once. It runs in
/// the HTTP layer rather than as a schema extension: with no extension registered,
/// async-graphql resolves each field on its fast path.
pub struct QueryGate {
    limits: Limits,
    shape: SchemaShape,
    /// Parsed documents by their text. Clients send the same few queries over and over; a
    /// copy of a parsed document costs a fraction of parsing it again.
    documents: Option<Mutex<LruCache<String, Arc<Known>>>>,
}

/// A parsed document, and whether async-graphql's full validation has passed it.
pub struct Known {
    doc: ExecutableDocument,
    validated: AtomicBool,
    /// [`no_key_twice`] of the document.
    unmerged: bool,
    /// The document's measure against the limits, once it is known to hold for any
    /// variables (`measure_document`).
    measured: std::sync::OnceLock<ServerResult<u64>>,
}

/// An admitted request: how it is to be run, and whether its document gives no response
/// key twice at any level of any operation (with fields only, no fragment), so that
/// async-graphql never merges two answers into one (`graphql::plain::JsonText`).
pub struct Admitted {
    pub admission: Admission,
    pub unmerged: bool,
}

/// Whether every operation of the document selects fields only (no fragment, named or
/// inline) and no response key twice in any selection set.
fn no_key_twice(doc: &ExecutableDocument) -> bool {
    fn set(s: &SelectionSet) -> bool {
        s.items
            .iter()
            .enumerate()
            .all(|(i, item)| match &item.node {
                Selection::Field(f) => {
                    let key = f.node.response_key().node.as_str();
                    set(&f.node.selection_set.node)
                        && !s.items[..i].iter().any(|other| match &other.node {
                            Selection::Field(o) => o.node.response_key().node.as_str() == key,
                            _ => false,
                        })
                }
                Selection::FragmentSpread(_) | Selection::InlineFragment(_) => false,
            })
    }
    doc.operations
        .iter()
        .all(|(_, op)| set(&op.node.selection_set.node))
}

/// How an admitted request is to be run.
pub enum Admission {
    /// A document the full validation passed before, with variables of plain scalar types
    /// whose values have those types: nothing validation checks can differ this time, so
    /// the schema that skips validation may run it (`graphql::build_trusted_schema`).
    Trusted,
    /// Validate it in full; a document from the cache is marked once it passes
    /// (`Admission::passed`).
    Validate(Option<Arc<Known>>),
}

impl Admission {
    /// The request ran past validation: its document is valid, whatever its variables.
    pub fn passed(&self) {
        if let Admission::Validate(Some(known)) = self {
            known.validated.store(true, AtomicOrdering::Relaxed);
        }
    }
}

impl QueryGate {
    pub fn new(settings: &GraphqlSettings, sdl: &str) -> anyhow::Result<Self> {
        Ok(QueryGate {
            limits: Limits::from(settings),
            shape: SchemaShape::from_sdl(sdl)?,
            documents: NonZeroUsize::new(settings.document_cache_size)
                .map(|n| Mutex::new(LruCache::new(n))),
        })
    }

    fn cached(&self, query: &str) -> Option<Arc<Known>> {
        let mut cache = self.documents.as_ref()?.lock().ok()?;
        cache.get(query).cloned()
    }

    fn remember(&self, query: &str, doc: &ExecutableDocument) -> Option<Arc<Known>> {
        // Clients repeat small documents; large ones are rare, and caching them would let
        // a stream of distinct large documents hold memory.
        if query.len() > MAX_CACHED_DOCUMENT_BYTES {
            return None;
        }
        let mut cache = self.documents.as_ref()?.lock().ok()?;
        let known = Arc::new(Known {
            doc: doc.clone(),
            validated: AtomicBool::new(false),
            unmerged: no_key_twice(doc),
            measured: std::sync::OnceLock::new(),
        });
        cache.put(query.to_string(), known.clone());
        Some(known)
    }

    /// Checks the request against every limit and attaches its parsed document.
    pub fn admit(&self, request: &mut Request) -> ServerResult<Admitted> {
        let (doc, known) = match self.cached(&request.query) {
            Some(known) => (known.doc.clone(), Some(known)),
            None => {
                check_text(&self.limits, &request.query)?;
                let doc = async_graphql::parser::parse_query(&request.query)?;
                let known = self.remember(&request.query, &doc);
                (doc, known)
            }
        };
        // The cost may depend on the variables (`first: $n`); a document whose measure
        // read none is measured once.
        match known.as_ref().and_then(|k| k.measured.get()) {
            Some(measured) => measured.clone()?,
            None => {
                let (measured, fixed) =
                    measure_document(&self.limits, &self.shape, &doc, &request.variables);
                if let (true, Some(k)) = (fixed, &known) {
                    let _ = k.measured.set(measured.clone());
                }
                measured?
            }
        };
        single_root_field(&doc)?;
        let op = chosen_operation(&doc, request.operation_name.as_deref());
        if let Some(op) = op {
            null_for_non_null(op, &request.variables)?;
        }
        let unmerged = match &known {
            Some(k) => k.unmerged,
            None => no_key_twice(&doc),
        };
        let admission = match known {
            Some(k)
                if k.validated.load(AtomicOrdering::Relaxed)
                    && op.is_some_and(|op| plainly_typed(op, &request.variables)) =>
            {
                Admission::Trusted
            }
            known => Admission::Validate(known),
        };
        request.set_parsed_query(doc);
        Ok(Admitted {
            admission,
            unmerged,
        })
    }
}

/// GraphQL's "Single root field" rule (specification §5.2.3.1), which async-graphql does
/// not check: every subscription operation of the document selects exactly one root field,
/// counted by response key through fragments, `__typename` included, and that field is not
/// an introspection field. A subscription is one stream of one event kind; with two root
/// fields the server would have to merge streams the client cannot tell apart.
pub fn single_root_field(doc: &ExecutableDocument) -> ServerResult<()> {
    fn collect<'a>(
        doc: &'a ExecutableDocument,
        set: &'a SelectionSet,
        seen: &mut Vec<&'a str>,
        keys: &mut Vec<(&'a str, &'a str, Pos)>,
    ) {
        for item in &set.items {
            match &item.node {
                Selection::Field(f) => {
                    let key = f.node.response_key().node.as_str();
                    if !keys.iter().any(|(k, _, _)| *k == key) {
                        keys.push((key, f.node.name.node.as_str(), f.pos));
                    }
                }
                Selection::InlineFragment(i) => {
                    collect(doc, &i.node.selection_set.node, seen, keys);
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    // A fragment spread twice (or in a cycle, which validation refuses
                    // anyway) is counted once.
                    if seen.contains(&name) {
                        continue;
                    }
                    seen.push(name);
                    if let Some(f) = doc.fragments.get(&spread.node.fragment_name.node) {
                        collect(doc, &f.node.selection_set.node, seen, keys);
                    }
                }
            }
        }
    }
    for (_, op) in doc.operations.iter() {
        if op.node.ty != OperationType::Subscription {
            continue;
        }
        let mut keys = Vec::new();
        collect(doc, &op.node.selection_set.node, &mut Vec::new(), &mut keys);
        let refusal = match keys.as_slice() {
            [(_, name, _)] if name.starts_with("__") => Some(format!(
                "a subscription's root field cannot be `{name}`; select the event to listen to"
            )),
            [_] => None,
            _ => Some(format!(
                "a subscription selects exactly one root field; this one selects {} ({})",
                keys.len(),
                keys.iter()
                    .map(|(k, _, _)| *k)
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
        if let Some(message) = refusal {
            let mut err = ServerError::new(message, Some(op.pos));
            let mut ext = ErrorExtensionValues::default();
            ext.set("code", "BAD_USER_INPUT");
            ext.set("field", "query");
            err.extensions = Some(ext);
            return Err(err);
        }
    }
    Ok(())
}

/// The operation a request names, or its first.
pub(crate) fn chosen_operation<'a>(
    doc: &'a ExecutableDocument,
    operation: Option<&str>,
) -> Option<&'a Positioned<OperationDefinition>> {
    match operation {
        Some(name) => doc
            .operations
            .iter()
            .find(|(n, _)| n.is_some_and(|n| n.as_str() == name))
            .map(|(_, op)| op),
        None => doc.operations.iter().next().map(|(_, op)| op),
    }
}

/// A variable declared non-null (`$c: ID!`) given null: async-graphql's validation lets it
/// through when the argument it fills is nullable, and the field then runs as if the
/// argument were left out.
fn null_for_non_null(
    op: &Positioned<OperationDefinition>,
    variables: &Variables,
) -> ServerResult<()> {
    for def in &op.node.variable_definitions {
        let def = &def.node;
        if !def.var_type.node.nullable && matches!(variables.get(&def.name.node), Some(Value::Null))
        {
            let message = format!(
                "Variable \"${}\" is declared {} and must not be null.",
                def.name.node, def.var_type.node
            );
            return Err(AppError::bad_input(def.name.node.as_str(), message)
                .extend()
                .into_server_error(def.name.pos));
        }
    }
    Ok(())
}

/// Whether every variable of the operation is declared with a built-in scalar type and
/// given a value of that type (or null where the type allows it), and no other variable is
/// given: then validation, which checks a variable's value against the arguments it fills,
/// cannot answer differently than it did for the same document before. Anything else
/// (enums, input objects, lists, missing values, defaults) is validated in full.
fn plainly_typed(op: &Positioned<OperationDefinition>, variables: &Variables) -> bool {
    let defined = &op.node.variable_definitions;
    if variables.len() != defined.len() {
        return false;
    }
    defined.iter().all(|def| {
        let def = &def.node;
        if def.default_value.is_some() {
            return false;
        }
        let BaseType::Named(name) = &def.var_type.node.base else {
            return false;
        };
        match variables.get(&def.name.node) {
            None => false,
            Some(Value::Null) => def.var_type.node.nullable,
            Some(value) => match (name.as_str(), value) {
                ("ID", Value::String(_)) | ("String", Value::String(_)) => true,
                ("ID", Value::Number(n)) => n.is_i64() || n.is_u64(),
                ("Int", Value::Number(n)) => n.as_i64().is_some_and(|i| i32::try_from(i).is_ok()),
                ("Float", Value::Number(_)) | ("Boolean", Value::Boolean(_)) => true,
                _ => false,
            },
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    const SDL: &str = r#"
        type Query { suggestions(first: Int = 20, after: String): SuggestionConnection! me: User }
        type SuggestionConnection { nodes: [Suggestion!]! totalCount: Int! }
        type Suggestion { id: ID! title: String! commitment: Commitment! revisions: [Revision!]! }
        type Revision { title: String! }
        type Commitment { reference: String! suggestions(first: Int = 20): SuggestionConnection! }
        type User { id: ID! }
    "#;

    fn limits() -> Limits {
        Limits {
            max_document_bytes: 32_768,
            max_fragment_spreads: 200,
            max_cost: 5_000,
            max_complexity: 1_000,
            max_depth: 12,
            max_recursive_depth: 32,
            max_introspection_depth: 16,
            max_aliases: 30,
            max_directives: 4,
        }
    }

    fn measure(query: &str, variables: serde_json::Value) -> ServerResult<u64> {
        let shape = SchemaShape::from_sdl(SDL).unwrap();
        let doc = async_graphql::parser::parse_query(query).unwrap();
        let vars = Variables::from_json(variables);
        check_document(&limits(), &shape, &doc, &vars)
    }

    /// A document is measured once only when no `first` of it reads a variable.
    #[test]
    fn a_measure_is_kept_only_when_it_read_no_variable() {
        let shape = SchemaShape::from_sdl(SDL).unwrap();
        let fixed = |query: &str, variables: serde_json::Value| {
            let doc = async_graphql::parser::parse_query(query).unwrap();
            let vars = Variables::from_json(variables);
            measure_document(&limits(), &shape, &doc, &vars).1
        };
        assert!(fixed(
            "{ suggestions(first: 5) { nodes { id } } }",
            json!({})
        ));
        assert!(fixed(
            "query($a: String) { suggestions(first: 5, after: $a) { nodes { id } } }",
            json!({"a": "x"})
        ));
        assert!(!fixed(
            "query($n: Int) { suggestions(first: $n) { nodes { id } } }",
            json!({"n": 5})
        ));
        // A default counts as reading the variable: the request may give another value.
        assert!(!fixed(
            "query($n: Int = 5) { suggestions(first: $n) { nodes { id } } }",
            json!({})
        ));
        assert!(!fixed(
            "{ ...F } fragment F on Query { suggestions(first: $n) { nodes { id } } }",
            json!({"n": 5})
        ));
    }

    /// Through the gate: a kept document whose cost depends on `first: $n` is measured
    /// again for each request, one that does not is refused the same way every time.
    #[test]
    fn the_gate_measures_a_variable_cost_every_time() {
        let gate = QueryGate {
            limits: limits(),
            shape: SchemaShape::from_sdl(SDL).unwrap(),
            documents: Some(Mutex::new(LruCache::new(NonZeroUsize::new(8).unwrap()))),
        };
        let ask = |query: &str, variables: serde_json::Value| {
            let mut request = Request::new(query).variables(Variables::from_json(variables));
            gate.admit(&mut request).map(|_| ())
        };
        let q = "query($n: Int) { suggestions(first: $n) { nodes { commitment { suggestions(first: $n) { nodes { id } } } } } }";
        assert!(ask(q, json!({"n": 1})).is_ok());
        assert!(ask(q, json!({"n": 1})).is_ok());
        assert!(ask(q, json!({"n": 100})).is_err());
        assert!(ask(q, json!({"n": 1})).is_ok());
        let heavy = "{ suggestions(first: 100) { nodes { commitment { suggestions(first: 100) { nodes { id } } } } } }";
        assert!(ask(heavy, json!({})).is_err());
        assert!(ask(heavy, json!({})).is_err());
    }

    #[test]
    fn a_connection_costs_first_times_its_selection() {
        // 10 × (1 + nodes(1 + id + title)) = 10 × 4
        assert_eq!(
            measure(
                "{ suggestions(first: 10) { nodes { id title } } }",
                serde_json::json!({})
            )
            .unwrap(),
            40
        );
        // The default `first` is 20; a variable counts as its value.
        assert_eq!(
            measure("{ suggestions { nodes { id } } }", serde_json::json!({})).unwrap(),
            60
        );
        assert_eq!(
            measure(
                "query($n: Int) { suggestions(first: $n) { nodes { id } } }",
                serde_json::json!({ "n": 5 })
            )
            .unwrap(),
            15
        );
        // A plain list is assumed to hold ten.
        assert_eq!(
            measure(
                "{ suggestions(first: 1) { nodes { revisions { title } } } }",
                serde_json::json!({})
            )
            .unwrap(),
            1 + 1 + 10 * 2
        );
    }

    #[test]
    fn nested_connections_multiply() {
        let q = "{ suggestions(first:100){nodes{commitment{suggestions(first:100){nodes{commitment{suggestions(first:100){nodes{title}}}}}}}}}";
        let err = measure(q, serde_json::json!({})).unwrap_err();
        let ext = err.extensions.unwrap();
        assert_eq!(ext.get("code"), Some(&Value::from(QUERY_TOO_COMPLEX)));
        let cost = ext.get("cost").and_then(|c| match c {
            Value::Number(n) => n.as_u64(),
            _ => None,
        });
        assert!(cost.unwrap() > 1_000_000, "{cost:?}");
    }

    #[test]
    fn fragment_fan_out_is_measured_once_per_fragment() {
        let levels = 60;
        let mut q = String::from("query { ...F0 }");
        for i in 0..levels {
            q.push_str(&format!(
                " fragment F{i} on Query {{ ...F{n} ...F{n} ...F{n} }}",
                n = i + 1
            ));
        }
        q.push_str(&format!(" fragment F{levels} on Query {{ __typename }}"));
        // 3^60 paths: measured in microseconds, refused with a saturated cost.
        let err = measure(&q, serde_json::json!({})).unwrap_err();
        assert!(err.message.contains("too complex"), "{}", err.message);
    }

    #[test]
    fn a_fragment_cycle_is_refused() {
        let err = measure(
            "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }",
            serde_json::json!({}),
        )
        .unwrap_err();
        assert!(err.message.contains("spreads itself"), "{}", err.message);
    }

    #[test]
    fn text_nesting_skips_strings_and_comments() {
        assert_eq!(text_nesting(r#"{ a(b: "{{{{") { c } } # {{{{"#), 2);
        assert_eq!(text_nesting(r#"{ a(b: """ {{{ \""" {{ """) }"#), 2);
        assert_eq!(text_nesting("[[[[]]]]"), 4);
    }
}
