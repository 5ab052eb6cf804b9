export { createTessera, type Tessera, type TesseraEvents, type TesseraStatus, type LogoutScope } from './create-tessera.js';
export { TesseraSdkError, isTesseraSdkError, SDK_ERRORS, type SdkErrorCode, type ServerErrorCode, type TesseraSdkErrorCode } from './errors.js';
export type { TesseraOptions, FeedOptions, TesseraLogger, UnavailableFeedPolicy } from './options.js';
export type { TesseraSession, TokenSet, IntrospectionResult, StartedSession } from './session.js';
export type { RevocationEvent, FeedStatus, FeedState } from './internal/feed-follower.js';
export type { FetchLike } from './internal/api-client.js';
export { readAccessToken, type AuthenticateOptions, type AuthenticateRequestInput, type AuthenticateResult, type HeaderSource } from './authenticate-request.js';
export {
  createBackchannelReceiver,
  createBackchannelHandler,
  createExpressBackchannelHandler,
  BACKCHANNEL_LOGOUT_EVENT,
  type BackchannelLogout,
  type BackchannelReceiver,
  type BackchannelReceiverOptions,
  type BackchannelRequest,
  type BackchannelResult,
} from './backchannel.js';
