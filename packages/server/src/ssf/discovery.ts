import { DELIVERY_URNS } from '@tessera/core';
import { Type } from '@fastify/type-provider-typebox';
import type { ServerContext, TesseraApp } from '../context.js';
import { SSF_PATHS } from './paths.js';

/**
 * The transmitter metadata (SSF 1.0 §7.1) with every member the CAEP Interoperability
 * Profile requires of a transmitter: spec_version 1_0, issuer, jwks_uri, both delivery
 * methods, the configuration, status and verification endpoints, and OAuth 2.0
 * (urn:ietf:rfc:6749) as the authorization scheme; plus the subject endpoints and
 * default_subjects. Everything listed is implemented.
 */
export function transmitterMetadata(issuer: string): Record<string, unknown> {
  return {
    spec_version: '1_0',
    issuer,
    jwks_uri: `${issuer}/.well-known/jwks.json`,
    delivery_methods_supported: [DELIVERY_URNS.push, DELIVERY_URNS.poll],
    configuration_endpoint: `${issuer}${SSF_PATHS.configuration}`,
    status_endpoint: `${issuer}${SSF_PATHS.status}`,
    add_subject_endpoint: `${issuer}${SSF_PATHS.addSubject}`,
    remove_subject_endpoint: `${issuer}${SSF_PATHS.removeSubject}`,
    verification_endpoint: `${issuer}${SSF_PATHS.verification}`,
    // The receiver authenticates with access tokens from Tessera's token endpoint
    // (client_credentials; scopes ssf.manage and ssf.read).
    authorization_schemes: [{ spec_urn: 'urn:ietf:rfc:6749' }],
    // Every subject is in a new stream until the receiver removes it.
    default_subjects: 'ALL',
  };
}

/** `GET /.well-known/ssf-configuration`. */
export async function ssfDiscoveryRoutes(app: TesseraApp, { config }: ServerContext): Promise<void> {
  const metadata = transmitterMetadata(config.issuer);
  app.get(SSF_PATHS.metadata, {
    schema: { tags: ['ssf'], description: 'Shared Signals Framework 1.0 transmitter metadata (§7.1).', response: { 200: Type.Object({}, { additionalProperties: true }) } },
  }, async (_request, reply) => {
    // Static for the life of the process: safe to cache briefly.
    reply.header('cache-control', 'public, max-age=300');
    return metadata;
  });
}
