// Starts Convene's GraphiQL. A served file rather than an inline script, so the page's
// Content-Security-Policy can forbid inline scripts altogether.
(function () {
  "use strict";

  var container = document.getElementById("graphiql");
  ReactDOM.createRoot(container).render(
    React.createElement(GraphiQL, {
      // GraphiQL's own introspection query is answered under the default limits
      // (graphql.max_introspection_depth covers its `ofType` chain).
      fetcher: GraphiQL.createFetcher({ url: container.dataset.endpoint }),
      // The schema is the first thing a newcomer needs to see.
      visiblePlugin: GraphiQL.React.DOC_EXPLORER_PLUGIN,
      defaultEditorToolsVisibility: true,
    })
  );
})();
