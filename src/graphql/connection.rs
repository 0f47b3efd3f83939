//! Relay cursor connections: `edges { cursor node }`, `nodes`, `pageInfo` and a
//! `totalCount` that is counted only when asked for.

use async_graphql::SimpleObject;
use futures::future::BoxFuture;

use crate::error::AppResult;

/// Where a page ends and whether another follows.
#[derive(SimpleObject, Clone)]
pub struct PageInfo {
    /// True when more items follow this page.
    pub has_next_page: bool,
    /// The cursor of the last item on this page; pass it as `after` for the next page.
    pub end_cursor: Option<String>,
}

/// Counts every item of the list (not just this page) when `totalCount` is selected.
pub type TotalCount = Box<dyn Fn() -> BoxFuture<'static, AppResult<u64>> + Send + Sync>;

macro_rules! connection {
    ($conn:ident, $edge:ident, $node:ty, $conn_doc:literal, $edge_doc:literal) => {
        pub struct $edge {
            /// Encoded only when a query asks for it: most pages select `nodes` alone.
            pub cursor: $crate::services::page::Cursor,
            pub node: $node,
        }

        #[doc = $edge_doc]
        #[async_graphql::Object]
        impl $edge {
            /// Opaque position of this item; pass it as `after` to page on from here.
            async fn cursor(&self) -> String {
                self.cursor.encode()
            }
            /// The item.
            async fn node(&self) -> $crate::graphql::plain::Plainly<'_, $node> {
                $crate::graphql::plain::Plainly(&self.node)
            }
        }

        pub struct $conn {
            pub edges: Vec<$edge>,
            pub has_next_page: bool,
            pub total: $crate::graphql::connection::TotalCount,
        }

        impl $conn {
            pub fn new<T>(
                page: $crate::services::page::Page<T>,
                wrap: impl Fn(T) -> $node,
                total: $crate::graphql::connection::TotalCount,
            ) -> Self {
                $conn {
                    has_next_page: page.has_next_page,
                    edges: page
                        .items
                        .into_iter()
                        .map(|(cursor, t)| $edge {
                            cursor,
                            node: wrap(t),
                        })
                        .collect(),
                    total,
                }
            }
        }

        #[doc = $conn_doc]
        #[async_graphql::Object]
        impl $conn {
            /// The items of this page with their cursors.
            async fn edges(&self) -> &[$edge] {
                &self.edges
            }
            /// The items of this page.
            async fn nodes(&self) -> $crate::graphql::plain::PlainList<'_, $node> {
                $crate::graphql::plain::PlainList(self.edges.iter().map(|e| &e.node).collect())
            }
            /// Where this page ends and whether another follows.
            async fn page_info(&self) -> $crate::graphql::connection::PageInfo {
                $crate::graphql::connection::PageInfo {
                    has_next_page: self.has_next_page,
                    end_cursor: self.edges.last().map(|e| e.cursor.encode()),
                }
            }
            /// How many items the whole list holds.
            async fn total_count(&self) -> async_graphql::Result<i64> {
                let n = (self.total)().await?;
                Ok(i64::try_from(n).unwrap_or(i64::MAX))
            }
        }
    };
}

pub(crate) use connection;
