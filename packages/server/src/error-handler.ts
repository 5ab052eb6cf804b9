import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { TesseraError, type ErrorCode } from '@tessera/core';

// Fastify's own errors mapped to Tessera's catalogue, so that no bad input ever reaches a
// client as a 500 or as Fastify's internal codes.
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'MALFORMED_BODY',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'MALFORMED_BODY',
  FST_ERR_CTP_INVALID_JSON_BODY: 'MALFORMED_BODY',
  FST_ERR_BAD_URL: 'INVALID_REQUEST',
  FST_ERR_MAX_PARAM_LENGTH: 'INVALID_REQUEST',
  FST_ERR_ASYNC_CONSTRAINT: 'INVALID_REQUEST',
};

/** The catalogue error of any failure (Fastify's own included); a 5xx keeps the cause for the log only. */
export function classify(error: FastifyError): TesseraError {
  if (error instanceof TesseraError) return error;
  if (error.validation) return new TesseraError('INVALID_REQUEST', `Invalid ${error.validationContext ?? 'request'}: ${error.message}`.slice(0, 500));
  const mapped = error.code ? FASTIFY_CODES[error.code] : undefined;
  if (mapped) return new TesseraError(mapped);
  if (error.statusCode === 429) return new TesseraError('RATE_LIMITED');
  if (error instanceof SyntaxError || error.statusCode === 400) return new TesseraError('MALFORMED_BODY');
  if (error.statusCode === 413) return new TesseraError('PAYLOAD_TOO_LARGE');
  if (error.statusCode === 415) return new TesseraError('UNSUPPORTED_MEDIA_TYPE');
  if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) return new TesseraError('INVALID_REQUEST');
  return new TesseraError('INTERNAL', undefined, { cause: error });
}

/**
 * Sends the error envelope for a failure. Also given to Fastify as `frameworkErrors`, so the
 * router's own rejections (bad percent-encoding, over-long path parameters), raised before
 * any route or error handler runs, get the same envelope and a catalogue code.
 */
export function sendError(error: FastifyError, request: FastifyRequest, reply: FastifyReply): void {
  const tessera = classify(error);
  if (tessera.status >= 500) request.log.error({ err: error }, 'request failed');
  else request.log.info({ code: tessera.code }, 'request rejected');
  // A failure limit (failure-limits.ts) or a stream's verification interval says when to come back.
  const retryAfter = (error as { retryAfterSeconds?: unknown }).retryAfterSeconds;
  if ((tessera.code === 'RATE_LIMITED' || tessera.code === 'SSF_VERIFICATION_TOO_SOON') && typeof retryAfter === 'number') void reply.header('retry-after', String(retryAfter));
  // 5xx details stay in the log; the client gets the catalogue's safe message, no stack.
  void reply.status(tessera.status).type('application/json').send({ error: tessera.code, message: tessera.expose ? tessera.message : 'An internal error occurred.' });
}

/** Installs the error envelope `{"error": CODE, "message": …}` for every failure and for unknown routes. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler(sendError);
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ error: 'NOT_FOUND', message: `No route ${request.method} ${request.url.split('?')[0]!.slice(0, 200)}` });
  });
}
