/** Decides, from the status the client got, whether the response is stored for replay (R14). */
export type StoreResponsePredicate = (status: number) => boolean;

// Statuses that mean the request never really ran: the client is expected to correct it or
// simply try again, and a stored copy would replay the refusal forever.
const NEVER_RAN = new Set([400, 401, 403, 408, 409, 423, 425, 429]);

/** Store every status below 500 except the "never really ran" ones; release the key for the rest. */
export const defaultStoreResponse: StoreResponsePredicate = (status) => status < 500 && !NEVER_RAN.has(status);
