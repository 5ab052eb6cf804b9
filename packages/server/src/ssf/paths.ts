import { SSF_POLL_PATH } from '@tessera/core';

/** The paths of the Shared Signals transmitter's endpoints (under the issuer). */
export const SSF_PATHS = Object.freeze({
  metadata: '/.well-known/ssf-configuration',
  configuration: '/ssf/streams',
  status: '/ssf/status',
  verification: '/ssf/verify',
  addSubject: '/ssf/subjects/add',
  removeSubject: '/ssf/subjects/remove',
  poll: SSF_POLL_PATH,
  globalRevocation: '/oauth/global-token-revocation',
  /** Tessera as a receiver of an upstream transmitter's pushes (`ssf.upstreams`). */
  receive: '/ssf/receive/:name',
});
