/** What the API-key guard puts on the request: the library's default account resolver reads it. */
export interface Principal {
  readonly accountId: string;
}

export interface AuthenticatedRequest {
  headers: Record<string, string | string[] | undefined>;
  user?: Principal;
}
