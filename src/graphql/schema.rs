//! The schema's roots, its limits, and the checks that run before any resolver.

use std::sync::Arc;

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{
    EmptySubscription, MergedObject, Schema, SchemaBuilder, ServerError, ServerResult, Variables,
};

use super::accounts::{AccountMutation, AccountQuery};
use super::commitments::{CommitmentMutation, CommitmentQuery};
use super::suggestions::{SuggestionMutation, SuggestionQuery};
use crate::config::GraphqlSettings;

/// Every query field, merged from the domain modules.
#[derive(MergedObject, Default)]
pub struct Query(AccountQuery, CommitmentQuery, SuggestionQuery);

/// Every mutation, merged from the domain modules.
#[derive(MergedObject, Default)]
pub struct Mutation(AccountMutation, CommitmentMutation, SuggestionMutation);

pub type ConveneSchema = Schema<Query, Mutation, EmptySubscription>;

/// The message every limit error starts with, so the HTTP layer can give it its code.
pub const TOO_COMPLEX: &str = "Query is too complex";

fn builder() -> SchemaBuilder<Query, Mutation, EmptySubscription> {
    Schema::build(Query::default(), Mutation::default(), EmptySubscription)
}

/// Builds the schema with the configured limits. Request data (services, viewer) is added
/// per request by the HTTP layer.
pub fn build_schema(settings: &GraphqlSettings) -> ConveneSchema {
    let mut b = builder()
        .limit_depth(settings.max_depth)
        .limit_complexity(settings.max_complexity)
        .limit_recursive_depth(settings.max_recursive_depth)
        .limit_directives(settings.max_directives)
        .extension(AliasLimit(settings.max_aliases));
    if !settings.introspection {
        b = b.disable_introspection();
    }
    b.finish()
}

/// The SDL written to `schema.graphql`.
pub fn sdl() -> String {
    builder().finish().sdl()
}

/// Refuses documents that use more aliases than allowed: aliases multiply the work of one
/// field without deepening the query, so depth and complexity alone do not bound them.
struct AliasLimit(usize);

impl ExtensionFactory for AliasLimit {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(AliasLimitExtension(self.0))
    }
}

struct AliasLimitExtension(usize);

fn count_aliases(set: &SelectionSet, doc: &ExecutableDocument, depth: usize) -> usize {
    if depth > 64 {
        return 0;
    }
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(f) => {
                usize::from(f.node.alias.is_some())
                    + count_aliases(&f.node.selection_set.node, doc, depth + 1)
            }
            Selection::InlineFragment(i) => {
                count_aliases(&i.node.selection_set.node, doc, depth + 1)
            }
            Selection::FragmentSpread(s) => doc
                .fragments
                .get(&s.node.fragment_name.node)
                .map(|frag| count_aliases(&frag.node.selection_set.node, doc, depth + 1))
                .unwrap_or(0),
        })
        .sum()
}

#[async_trait::async_trait]
impl Extension for AliasLimitExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let doc = next.run(ctx, query, variables).await?;
        let aliases: usize = doc
            .operations
            .iter()
            .map(|(_, op)| count_aliases(&op.node.selection_set.node, &doc, 0))
            .sum();
        if aliases > self.0 {
            return Err(ServerError::new(
                format!(
                    "{TOO_COMPLEX}: it uses {aliases} aliases, more than {}",
                    self.0
                ),
                None,
            ));
        }
        Ok(doc)
    }
}
