import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerContext } from '../context.js';
import type { TSchema } from '@fastify/type-provider-typebox';
import { sendPage, type FormCsrf } from '../pages/index.js';
import { createValidatorCompiler } from '../validation.js';
import type { FieldErrors } from './layout.js';

/**
 * What every console route's schema starts with: its tag, and the console sign-in as its
 * security (the cookie scheme `adminConsole` of the OpenAPI document).
 */
export const CONSOLE_ROUTE = { tags: ['console'], security: [{ adminConsole: [] as string[] }] };

/** What every page module of the console is given (console/index.ts builds it). */
export interface ConsoleKit extends ServerContext {
  /** The console forms' CSRF token (checked for every POST by the console's preHandler). */
  csrf: FormCsrf;
  /** Wakes the delivery worker after a retry queued a delivery. */
  onDeliveriesQueued: () => void;
}

/** Sends a console page; `render` gets the CSRF token for its forms. */
export function showPage(kit: ConsoleKit, request: FastifyRequest, reply: FastifyReply, status: number, render: (csrf: string) => string): FastifyReply {
  return sendPage(reply, status, render(kit.csrf.issue(request, reply)));
}

/** 303 to a console page after a form did its work (Post/Redirect/Get). Only fixed, local paths are passed. */
export function seeOther(reply: FastifyReply, location: string): FastifyReply {
  return reply.status(303).header('location', location).send();
}

/** A form's text field as sent (forms post strings; anything else reads as absent). */
export function formText(body: unknown, name: string): string | undefined {
  const value = (body as Record<string, unknown> | null | undefined)?.[name];
  return typeof value === 'string' ? value : undefined;
}

/** One entry per non-empty line of a textarea, trimmed. */
export function lines(value: string | undefined): string[] {
  return (value ?? '').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
}

const compile = createValidatorCompiler();
const compiled = new WeakMap<object, (data: unknown) => boolean>();

/**
 * Checks a form, assembled into the admin API's body shape, against that route's own schema
 * (schemas.ts), so the console accepts exactly what the API accepts. Returns the first
 * failure as an error on its field, worded by `messages` (or a generic line).
 */
export function checkAgainst(schema: TSchema, value: unknown, messages: Record<string, string>): FieldErrors {
  let validate = compiled.get(schema) as (((data: unknown) => boolean) & { errors?: Array<{ instancePath: string; keyword: string; params: Record<string, unknown> }> | null }) | undefined;
  if (!validate) {
    validate = compile({ schema, httpPart: 'body', method: 'POST', url: '/admin' }) as unknown as typeof validate;
    compiled.set(schema, validate!);
  }
  if (validate!(value)) return {};
  const first = validate!.errors?.[0];
  const name = first?.keyword === 'required' ? String(first.params.missingProperty) : (first?.instancePath.split('/')[1] ?? 'form');
  return { [name]: messages[name] ?? 'This value is not valid.' };
}
