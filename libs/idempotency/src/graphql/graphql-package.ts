// `graphql` is an optional peer: loaded when the first GraphQL mutation is intercepted, which
// happens only in an application that has it.
type GraphqlModule = typeof import('graphql');

let loaded: Promise<GraphqlModule> | undefined;

export function loadGraphql(): Promise<GraphqlModule> {
  loaded ??= import('graphql');
  return loaded;
}
