import net from 'node:net';
import tls from 'node:tls';

/** One entry of a certificate's subjectAltName, as Node.js prints it (`DNS`, `URI`, `IP Address`...). */
export interface SubjectAltName {
  type: string;
  value: string;
}

/**
 * Split Node's `subjectaltname` text (`DNS:a.test, URI:sip:a.test, IP Address:127.0.0.1`)
 * into its entries. A value holding a comma or a quote is printed as a JSON string.
 */
export function parseSubjectAltName(text: string | undefined): SubjectAltName[] {
  const out: SubjectAltName[] = [];
  if (!text) return out;
  let i = 0;
  while (i < text.length) {
    while (text[i] === ' ' || text[i] === ',') i++;
    const colon = text.indexOf(':', i);
    if (colon < 0) break;
    const type = text.slice(i, colon);
    i = colon + 1;
    let value: string;
    if (text[i] === '"') {
      let end = i + 1;
      while (end < text.length && text[end] !== '"') end += text[end] === '\\' ? 2 : 1;
      try {
        value = JSON.parse(text.slice(i, end + 1)) as string;
      } catch {
        value = text.slice(i + 1, end);
      }
      i = end + 1;
    } else {
      const comma = text.indexOf(', ', i);
      const end = comma < 0 ? text.length : comma;
      value = text.slice(i, end);
      i = end;
    }
    out.push({ type, value });
  }
  return out;
}

/**
 * The SIP domain a `URI` subjectAltName names (RFC 5922 §7.1): the host of a `sip:`
 * URI without a user part; `undefined` for anything else.
 */
export function sipUriDomain(uri: string): string | undefined {
  const m = /^sip:([^;?]*)/i.exec(uri);
  if (!m) return undefined;
  const hostport = m[1] as string;
  // "If the scheme of the URI value is 'sip', and the URI value contains a userpart
  // (there is an '@'), the implementation MUST NOT accept the value as an identity."
  if (hostport.includes('@') || hostport === '') return undefined;
  const host = hostport.startsWith('[')
    ? hostport.slice(0, hostport.indexOf(']') + 1)
    : hostport.replace(/:\d*$/, '');
  return normalizeName(host);
}

/** An error for a certificate that does not name the identity, shaped like Node's own. */
export class CertificateIdentityError extends Error {
  override name = 'CertificateIdentityError';
  readonly code = 'ERR_TLS_CERT_ALTNAME_INVALID';
  readonly host: string;
  readonly cert: tls.PeerCertificate;
  constructor(message: string, host: string, cert: tls.PeerCertificate) {
    super(message);
    this.host = host;
    this.cert = cert;
  }
}

/**
 * Check a server certificate against the SIP domain it was reached for (RFC 5922 §7).
 *
 * - The identities of a certificate are its subjectAltName `DNS` names and the domains
 *   of its `URI:sip:<domain>` entries; only when it has no subjectAltName at all is its
 *   subject CN used (§7.1).
 * - Names are compared whole and case-insensitively; no wildcard matches, and no
 *   suffix (§7.2: "Implementations MUST NOT match any form of wildcard").
 * - An IP address (a URI with a numeric host, RFC 3263 §4.2) is checked against the
 *   `IP Address` entries, by `tls.checkServerIdentity`.
 *
 * Returns `undefined` when the certificate names the domain, else the error to fail
 * the handshake with (code `ERR_TLS_CERT_ALTNAME_INVALID`, as Node's own check).
 */
export function checkSipServerIdentity(
  domain: string,
  cert: tls.PeerCertificate,
): Error | undefined {
  const host = normalizeName(domain);
  const bare = host.startsWith('[') ? host.slice(1, -1) : host;
  if (net.isIP(bare)) return tls.checkServerIdentity(bare, cert);
  const sans = parseSubjectAltName(cert.subjectaltname);
  if (sans.length > 0) {
    for (const san of sans) {
      if (san.type === 'DNS' && normalizeName(san.value) === host) return undefined;
      if (san.type === 'URI' && sipUriDomain(san.value) === host) return undefined;
    }
    return new CertificateIdentityError(
      `the certificate names ${cert.subjectaltname}, not ${host} (RFC 5922 §7.2)`,
      host,
      cert,
    );
  }
  const cn = cert.subject?.CN as string | string[] | undefined;
  const names = cn === undefined ? [] : Array.isArray(cn) ? cn : [cn];
  if (names.some((n) => normalizeName(n) === host)) return undefined;
  return new CertificateIdentityError(
    `the certificate has no subjectAltName and its CN (${names.join(', ') || 'none'}) is not ${host} (RFC 5922 §7.1)`,
    host,
    cert,
  );
}

const REASONS: Readonly<Record<string, string>> = {
  CERT_HAS_EXPIRED: 'certificate expired',
  CERT_NOT_YET_VALID: 'certificate not yet valid',
  CERT_REVOKED: 'certificate revoked',
  CERT_SIGNATURE_FAILURE: 'certificate signature invalid',
  CERT_UNTRUSTED: 'unknown CA',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'unknown CA',
  UNABLE_TO_GET_ISSUER_CERT: 'unknown CA',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'unknown CA',
  SELF_SIGNED_CERT_IN_CHAIN: 'unknown CA',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'unknown CA',
  ERR_TLS_CERT_ALTNAME_INVALID: 'hostname mismatch',
  ERR_SSL_TLSV1_ALERT_UNKNOWN_CA: 'the peer rejected our certificate (unknown CA)',
  ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE: 'the peer rejected our certificate',
  ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED: 'the peer rejected our certificate (expired)',
  ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED: 'the peer requires a client certificate',
  ERR_SSL_SSLV3_ALERT_HANDSHAKE_FAILURE: 'the peer refused the handshake',
  ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION: 'no TLS version in common',
  ERR_SSL_UNSUPPORTED_PROTOCOL: 'no TLS version in common',
  ERR_SSL_NO_PROTOCOLS_AVAILABLE: 'no TLS version in common',
  ERR_SSL_WRONG_VERSION_NUMBER: 'the peer does not speak TLS',
  ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE: 'the peer sent no certificate',
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset',
  ETIMEDOUT: 'timed out',
};

/**
 * Say why a TLS connection failed, in words first: `certificate expired: ...`,
 * `unknown CA: ...`, `hostname mismatch: ...`, followed by OpenSSL's or Node's message
 * and code.
 */
export function describeTlsError(error: Error): string {
  const code = (error as { code?: unknown }).code;
  const reason = typeof code === 'string' ? REASONS[code] : undefined;
  const suffix = typeof code === 'string' ? ` (${code})` : '';
  return reason ? `${reason}: ${error.message}${suffix}` : `${error.message}${suffix}`;
}

function normalizeName(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, '');
}
