//! Answering a list's objects without async-graphql's per-field machinery.
//!
//! async-graphql resolves every field of every object through a boxed future of the size of
//! the type's largest resolver, then hashes its name twice into the object's map. For a page
//! of twenty suggestions with their authors and commitments that is most of what Convene
//! spends on the request. A type that implements [`Plain`] says which of its fields it can
//! answer at once from what it holds (no arguments, nothing to load); a list of such objects
//! ([`PlainList`], every connection's `nodes`) answers those fields directly, in one pass
//! with no future per item, and leaves every other field to the type's own resolver; a
//! single object ([`Plainly`], `edges.node`) does the same in selection order.
//! A selection with fragments, custom directives or a response key given twice goes the
//! usual way whole, so what a query gets back never depends on which way it went (the test
//! `columns::every_field_reads_the_same_either_way` compares both for every field).

use std::borrow::Cow;

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{Field, Selection};
use async_graphql::registry::Registry;
use async_graphql::resolver_utils::{resolve_container_serial, resolve_list, ContainerType};
use async_graphql::{Context, ContextSelectionSet, OutputType, Positioned, ServerResult, Value};

/// A field's value given at once: `None` when the field is not one the type answers so.
pub type Answer = Option<async_graphql::Result<Value>>;

/// A GraphQL object some of whose fields need neither arguments nor a load.
pub trait Plain: ContainerType {
    /// False for a type that answers every field through its resolvers (the default), so a
    /// connection can wrap any node type.
    const ANSWERS: bool = false;

    /// The value of field `name` (its context is `c`), or `None` to leave it to the
    /// resolver. Must give exactly what the resolver gives.
    fn plain(&self, _c: &Context<'_>, _name: &str) -> Answer {
        None
    }
}

/// An object of a list, answered through [`Plain`] first. It is the same GraphQL type as
/// the object itself.
pub struct Plainly<'a, T>(pub &'a T);

impl<T: Plain> OutputType for Plainly<'_, T> {
    fn type_name() -> Cow<'static, str> {
        T::type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        T::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        if !T::ANSWERS {
            return self.0.resolve(ctx, field).await;
        }
        resolve(ctx, self.0).await
    }
}

/// A list of objects answered through [`Plain`]: every connection's `nodes`. It is the
/// same GraphQL type as a `Vec` of the objects. When the items' selection is plain (see
/// [`plain_fields`]), the whole list is answered in one pass with no future per item: plain
/// fields at once, and only the fields a type leaves to its resolvers become futures, all
/// run side by side so that their loads batch across the list. Otherwise each item goes
/// through [`Plainly`], as a `Vec` would.
pub struct PlainList<'a, T>(pub Vec<&'a T>);

impl<'a, T: Plain> OutputType for PlainList<'a, T> {
    fn type_name() -> Cow<'static, str> {
        <Vec<Plainly<'a, T>> as OutputType>::type_name()
    }

    fn qualified_type_name() -> String {
        <Vec<Plainly<'a, T>> as OutputType>::qualified_type_name()
    }

    fn create_type_info(registry: &mut Registry) -> String {
        <Vec<Plainly<'a, T>> as OutputType>::create_type_info(registry)
    }

    async fn resolve(
        &self,
        ctx: &ContextSelectionSet<'_>,
        field: &Positioned<Field>,
    ) -> ServerResult<Value> {
        if T::ANSWERS {
            if let Some(fields) = plain_fields(ctx) {
                return Ok(resolve_all(ctx, &fields, &self.0).await);
            }
        }
        let items = self.0.iter().map(|t| Plainly(*t));
        resolve_list(ctx, field, items, Some(self.0.len())).await
    }
}

/// The list's objects, each a map of `fields` in selection order. A field its type does
/// not answer at once keeps its place with a null until its resolver (run beside every
/// other such field of the list) gives its value; when that fails, the error is recorded
/// and the field left out, as [`resolve`] does for one object.
async fn resolve_all<T: Plain>(
    ctx: &ContextSelectionSet<'_>,
    fields: &[&Positioned<Field>],
    items: &[&T],
) -> Value {
    let mut maps = Vec::with_capacity(items.len());
    let mut pending = Vec::new();
    for (i, root) in items.iter().copied().enumerate() {
        let item = ctx.with_index(i);
        let type_name = root.introspection_type_name();
        let answer = |c: &Context<'_>, name: &str| root.plain(c, name);
        let mut map = IndexMap::with_capacity(fields.len());
        for (f, field) in fields.iter().copied().enumerate() {
            let key = field.node.response_key().node.clone();
            match plain_value(&item.with_field(field), &type_name, &answer) {
                Some(Ok(value)) => {
                    map.insert(key, value);
                }
                Some(Err(e)) => ctx.add_error(e),
                None => {
                    map.insert(key, Value::Null);
                    let item = item.clone();
                    pending.push(async move {
                        let c = item.with_field(field);
                        (i, f, root.resolve_field(&c).await)
                    });
                }
            }
        }
        maps.push(map);
    }
    for (i, f, value) in futures::future::join_all(pending).await {
        let key = &fields[f].node.response_key().node;
        match value {
            Ok(value) => {
                if let Some(slot) = maps[i].get_mut(key) {
                    *slot = value.unwrap_or_default();
                }
            }
            Err(e) => {
                maps[i].shift_remove(key);
                ctx.add_error(e);
            }
        }
    }
    Value::List(maps.into_iter().map(object).collect())
}

/// The selection's fields, when it holds fields only, none with a custom directive (`@skip`
/// and `@include` are gone by now) and no response key twice; otherwise `None`.
fn plain_fields<'a>(ctx: &ContextSelectionSet<'a>) -> Option<Vec<&'a Positioned<Field>>> {
    let items = &ctx.item.node.items;
    let mut fields = Vec::with_capacity(items.len());
    for selection in items {
        let Selection::Field(field) = &selection.node else {
            return None;
        };
        if !field.node.directives.is_empty() {
            return None;
        }
        let key = field.node.response_key().node.as_str();
        if fields
            .iter()
            .any(|f: &&Positioned<Field>| f.node.response_key().node.as_str() == key)
        {
            return None;
        }
        fields.push(field);
    }
    Some(fields)
}

/// A field's plain value: `__typename`, or what `answer` gives for the field's name, an
/// error carrying the field's position and path; `None` when the field is not plain.
fn plain_value(
    c: &Context<'_>,
    type_name: &str,
    answer: &impl Fn(&Context<'_>, &str) -> Answer,
) -> Option<ServerResult<Value>> {
    let name = c.item.node.name.node.as_str();
    if name == "__typename" {
        return Some(Ok(Value::String(type_name.to_owned())));
    }
    answer(c, name).map(|r| r.map_err(|e| c.set_error_path(e.into_server_error(c.item.pos))))
}

/// Answers the selection of field `c` (an object of type `type_name`) at once when every
/// field in it is plain (`answer` gives each, with its context and name): `None`, with
/// nothing recorded, when one is not. Used for objects nested in a plain one, such as a
/// suggestion's joined author.
pub fn resolve_now(
    c: &Context<'_>,
    type_name: &str,
    answer: impl Fn(&Context<'_>, &str) -> Answer,
) -> Option<Value> {
    let ctx = c.with_selection_set(&c.item.node.selection_set);
    let fields = plain_fields(&ctx)?;
    let mut map = IndexMap::with_capacity(fields.len());
    let mut errors = Vec::new();
    for field in fields {
        match plain_value(&ctx.with_field(field), type_name, &answer)? {
            Ok(value) => {
                map.insert(field.node.response_key().node.clone(), value);
            }
            Err(e) => errors.push(e),
        }
    }
    for e in errors {
        ctx.add_error(e);
    }
    Some(object(map))
}

/// Resolves one object: plain fields at once, the others through the type's resolvers in
/// selection order (their loads still batch with the same field of the list's other items,
/// which run side by side). Errors are recorded and the field left out, as async-graphql
/// does.
pub async fn resolve<T: Plain>(ctx: &ContextSelectionSet<'_>, root: &T) -> ServerResult<Value> {
    let Some(fields) = plain_fields(ctx) else {
        return resolve_container_serial(ctx, root).await;
    };
    let type_name = root.introspection_type_name();
    let answer = |c: &Context<'_>, name: &str| root.plain(c, name);
    let mut map = IndexMap::with_capacity(fields.len());
    for field in fields {
        let c = ctx.with_field(field);
        let value = match plain_value(&c, &type_name, &answer) {
            Some(value) => value,
            None => root.resolve_field(&c).await.map(Option::unwrap_or_default),
        };
        match value {
            Ok(value) => {
                map.insert(field.node.response_key().node.clone(), value);
            }
            Err(e) => ctx.add_error(e),
        }
    }
    Ok(object(map))
}

fn object(map: IndexMap<async_graphql::Name, Value>) -> Value {
    if map.is_empty() {
        Value::Null
    } else {
        Value::Object(map)
    }
}

/// A string field's value.
pub fn string(s: &str) -> Answer {
    Some(Ok(Value::String(s.to_owned())))
}

/// A scalar field's value, written as its GraphQL scalar writes it.
pub fn scalar<T: async_graphql::ScalarType>(v: &T) -> Answer {
    Some(Ok(v.to_value()))
}

/// An enum field's value.
pub fn enumeration<T: async_graphql::resolver_utils::EnumType>(v: T) -> Answer {
    Some(Ok(async_graphql::resolver_utils::enum_value(v)))
}
