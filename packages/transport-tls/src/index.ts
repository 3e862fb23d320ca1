export {
  CertificateIdentityError,
  checkSipServerIdentity,
  describeTlsError,
  parseSubjectAltName,
  type SubjectAltName,
  sipUriDomain,
} from './identity.ts';
export {
  type Pem,
  type TlsConnectionInfo,
  TlsTransport,
  type TlsTransportOptions,
} from './tls-transport.ts';
