/**
 * The socket.io Origin check (ALLOWED_ORIGINS): a browser page may open a signaling socket when its
 * origin is listed, or is this server's own (the page it served). A handshake without an Origin
 * header comes from no browser page (an avatar worker, a Node client): the header is what protects
 * browsers from other sites, so it passes. No list: every origin passes (development default).
 */
export function originAllowed(origin: string | undefined, allowed: readonly string[] | undefined, self: { host: string | undefined; secure: boolean }): boolean {
  if (origin === undefined || allowed === undefined) return true;
  if (allowed.includes(origin)) return true;
  return self.host !== undefined && origin === `${self.secure ? 'https' : 'http'}://${self.host}`;
}
