/** The PIDF document (RFC 3863) of one tuple with a basic status. */
export function pidf(entity: string, status: 'open' | 'closed', note?: string): string {
  const n = note ? `\n    <note>${note.replace(/[<&>]/g, '')}</note>` : '';
  return `<?xml version="1.0" encoding="UTF-8"?>
<presence xmlns="urn:ietf:params:xml:ns:pidf" entity="${entity}">
  <tuple id="sipworks">
    <status><basic>${status}</basic></status>${n}
  </tuple>
</presence>
`;
}
