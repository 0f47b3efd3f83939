// Starts Convene's GraphiQL. A served file rather than an inline script, so the page's
// Content-Security-Policy can forbid inline scripts altogether.
(function () {
  "use strict";

  // GraphiQL names its schema request so, and only that request gets TYPE_REF below.
  var INTROSPECTION_NAME = "ConveneGraphiQLSchema";

  // GraphiQL's own introspection query follows nine levels of `ofType`, 15 levels deep in
  // all, which the server's depth limit (graphql.max_depth, 12 by default) refuses. Six
  // levels still describe every type up to [[[T!]!]!]!; Convene's deepest is [T!]!.
  var TYPE_REF =
    "fragment TypeRef on __Type { kind name ofType { kind name ofType { kind name " +
    "ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } }";
  var INTROSPECTION =
    "query " + INTROSPECTION_NAME + " { __schema {" +
    " queryType { name kind } mutationType { name kind } subscriptionType { name kind }" +
    " types { ...FullType }" +
    " directives { name description locations args { ...InputValue } } } }" +
    " fragment FullType on __Type { kind name description" +
    " fields(includeDeprecated: true) { name description args { ...InputValue }" +
    " type { ...TypeRef } isDeprecated deprecationReason }" +
    " inputFields { ...InputValue } interfaces { ...TypeRef }" +
    " enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }" +
    " possibleTypes { ...TypeRef } }" +
    " fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue } " +
    TYPE_REF;

  var container = document.getElementById("graphiql");
  var http = GraphiQL.createFetcher({ url: container.dataset.endpoint });
  function fetcher(params, options) {
    if (params.operationName === INTROSPECTION_NAME) {
      params = Object.assign({}, params, { query: INTROSPECTION });
    }
    return http(params, options);
  }

  ReactDOM.createRoot(container).render(
    React.createElement(GraphiQL, {
      fetcher: fetcher,
      introspectionQueryName: INTROSPECTION_NAME,
      // The schema is the first thing a newcomer needs to see.
      visiblePlugin: GraphiQL.React.DOC_EXPLORER_PLUGIN,
      defaultEditorToolsVisibility: true,
    })
  );
})();
