// A Shared Signals stream row as the store takes it (createSsfStream), for the benchmarks that
// drive the store directly.

/** An enabled push stream of receiver client `app_rx`; `fields` overrides (status, delivery method). */
export function pushStream(id, at, fields = {}) {
  return { id, clientId: 'app_rx', audience: ['app_rx'], eventsRequested: ['x'], eventsDelivered: ['x'], deliveryMethod: 'push', endpointUrl: 'https://rx.example.test/events', authorizationHeader: null, description: null, status: 'enabled', statusReason: null, subjectFormat: 'iss_sub', minVerificationInterval: 30, lastVerificationAt: null, createdAt: at, updatedAt: at, ...fields };
}
