// A real OpenID Connect provider for Alfred's login tests (node-oidc-provider).
//
//   node server.mjs [port]
//
// Environment (all optional except the redirect URI):
//   OIDC_PORT            port on 127.0.0.1; 0 (the default) picks a free one. A command-line port wins.
//   OIDC_CLIENT_ID       default "alfred"
//   OIDC_CLIENT_SECRET   default "alfred-test-secret"
//   OIDC_REDIRECT_URIS   comma-separated, e.g. http://localhost:8000/oidc/callback/
//   OIDC_POST_LOGOUT_REDIRECT_URIS  comma-separated, where RP-initiated logout may send people back
//   OIDC_ACCOUNTS_FILE   JSON file of accounts, re-read on every login and claims request so a test
//                        can change an account between two logins. Without it: DEFAULT_ACCOUNTS.
//
// Issuer: http://127.0.0.1:<port>. One confidential client (client_secret_post, like
// mozilla-django-oidc sends it), RS256 ID tokens signed by a key generated at start-up.
// The login page checks the username and password against the accounts; consent is implied
// (a first-party client, as Alfred is in Keycloak), so the browser sees one form.
// When it listens, the server prints one line on stdout: "OIDC provider ready at <issuer>".

import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const DEFAULT_ACCOUNTS = {
  alice: {
    password: 'alice-password',
    sub: '7f0c2d5e-4a55-4a9b-9d6a-a11ce0000001',
    email: 'alice@example.test',
    given_name: 'Alice',
    family_name: 'Martin',
    roles: ['offline_access'],
  },
  sam: {
    password: 'sam-password',
    sub: '7f0c2d5e-4a55-4a9b-9d6a-5a3000000002',
    email: 'sam@example.test',
    given_name: 'Sam',
    family_name: 'Support',
    roles: ['alfred-support'],
  },
  carla: {
    password: 'carla-password',
    sub: '7f0c2d5e-4a55-4a9b-9d6a-ca71a0000003',
    email: 'carla@example.test',
    given_name: 'Carla',
    family_name: 'Compliance',
    roles: ['alfred-compliance'],
  },
};

function loadAccounts() {
  const file = process.env.OIDC_ACCOUNTS_FILE;
  return file ? JSON.parse(readFileSync(file, 'utf8')) : DEFAULT_ACCOUNTS;
}

function accountBySub(sub) {
  return Object.values(loadAccounts()).find((account) => account.sub === sub);
}

function claimsOf(account) {
  return {
    sub: account.sub,
    email: account.email,
    email_verified: true,
    given_name: account.given_name,
    family_name: account.family_name,
    name: `${account.given_name} ${account.family_name}`,
    // Keycloak's shape for realm roles; Alfred reads it through OIDC_ROLES_CLAIM.
    realm_access: { roles: account.roles || [] },
  };
}

function configuration({ clientId, clientSecret, redirectUris, postLogoutRedirectUris }) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'RS256', use: 'sig' };
  return {
    clients: [
      {
        client_id: clientId,
        client_secret: clientSecret,
        redirect_uris: redirectUris,
        post_logout_redirect_uris: postLogoutRedirectUris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_post',
        id_token_signed_response_alg: 'RS256',
      },
    ],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    // realm_access rides on the openid scope: like Keycloak's default "roles" scope, always there.
    claims: {
      openid: ['sub', 'realm_access'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name'],
    },
    scopes: ['openid', 'email', 'profile'],
    features: {
      devInteractions: { enabled: false },
      // Plain pages: the defaults load web fonts from the internet, which tests must not wait for.
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.body = page('Sign out', `<h1>Sign out of the test provider?</h1>${form}
  <button type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
  <button type="submit" form="op.logoutForm">No, stay signed in</button>`);
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.body = page('Signed out', '<h1>You are signed out of the test provider.</h1>');
        },
      },
    },
    interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    async renderError(ctx, out) {
      ctx.type = 'html';
      const lines = Object.entries(out).map(([key, value]) => `<p>${escapeHtml(key)}: ${escapeHtml(value)}</p>`);
      ctx.body = page('Error', `<h1>The test provider refused the request</h1>${lines.join('')}`);
    },
    async findAccount(ctx, sub) {
      const account = accountBySub(sub);
      if (!account) return undefined;
      return { accountId: sub, claims: async () => claimsOf(account) };
    },
    // A first-party client: grant what it asks for instead of showing a consent page.
    async loadExistingGrant(ctx) {
      const { provider, client, session, params } = ctx.oidc;
      const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
      const grant = grantId
        ? await provider.Grant.find(grantId)
        : new provider.Grant({ clientId: client.clientId, accountId: session.accountId });
      grant.addOIDCScope(String(params.scope || 'openid'));
      grant.addOIDCClaims(Object.keys(claimsOf({})));
      await grant.save();
      return grant;
    },
    ttl: { AccessToken: 600, AuthorizationCode: 60, IdToken: 600, Interaction: 600, Session: 3600, Grant: 3600 },
  };
}

function escapeHtml(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body>
${body}
</body></html>`;
}

function loginPage(uid, error) {
  return page('Test provider sign-in', `<h1>Test provider sign-in</h1>
  ${error ? `<p role="alert" class="error">${escapeHtml(error)}</p>` : ''}
  <form method="post" action="/interaction/${escapeHtml(uid)}/login">
    <label for="username">Username</label>
    <input id="username" name="username" autocomplete="username" required autofocus>
    <label for="password">Password</label>
    <input id="password" name="password" type="password" autocomplete="current-password" required>
    <button type="submit">Sign in</button>
  </form>`);
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16384) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function sendHtml(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

async function showInteraction(provider, req, res) {
  const { uid, prompt } = await provider.interactionDetails(req, res);
  if (prompt.name === 'login') {
    sendHtml(res, 200, loginPage(uid));
    return;
  }
  // loadExistingGrant answers consent; anything else is not something this test provider does.
  sendHtml(res, 501, `<p>Prompt ${escapeHtml(prompt.name)} is not implemented by the test provider.</p>`);
}

async function submitLogin(provider, req, res) {
  const { uid, prompt } = await provider.interactionDetails(req, res);
  if (prompt.name !== 'login') throw new Error(`unexpected prompt ${prompt.name}`);
  const form = await readForm(req);
  const account = loadAccounts()[form.get('username') || ''];
  if (!account || account.password !== form.get('password')) {
    sendHtml(res, 401, loginPage(uid, 'Invalid username or password.'));
    return;
  }
  await provider.interactionFinished(req, res, { login: { accountId: account.sub } }, { mergeWithLastSubmission: false });
}

async function interactions(provider, req, res) {
  const path = new URL(req.url, 'http://placeholder').pathname;
  if (req.method === 'GET' && /^\/interaction\/[\w-]+$/.test(path)) {
    await showInteraction(provider, req, res);
    return true;
  }
  if (req.method === 'POST' && /^\/interaction\/[\w-]+\/login$/.test(path)) {
    await submitLogin(provider, req, res);
    return true;
  }
  return false;
}

function main() {
  const port = Number(process.argv[2] ?? process.env.OIDC_PORT ?? 0);
  const settings = {
    clientId: process.env.OIDC_CLIENT_ID || 'alfred',
    clientSecret: process.env.OIDC_CLIENT_SECRET || 'alfred-test-secret',
    redirectUris: (process.env.OIDC_REDIRECT_URIS || '').split(',').filter(Boolean),
    postLogoutRedirectUris: (process.env.OIDC_POST_LOGOUT_REDIRECT_URIS || '').split(',').filter(Boolean),
  };
  if (settings.redirectUris.length === 0) {
    console.error('OIDC_REDIRECT_URIS is required');
    process.exit(2);
  }
  let provider;
  let providerCallback;
  const server = createServer((req, res) => {
    interactions(provider, req, res)
      .then((handled) => handled || providerCallback(req, res))
      .catch((error) => {
        console.error(error);
        if (!res.headersSent) sendHtml(res, 400, `<p>${escapeHtml(error.message)}</p>`);
        else res.end();
      });
  });
  // The issuer carries the port, so the provider is built once the server has its port.
  server.listen(port, '127.0.0.1', () => {
    const issuer = `http://127.0.0.1:${server.address().port}`;
    provider = new Provider(issuer, configuration(settings));
    providerCallback = provider.callback();
    console.log(`OIDC provider ready at ${issuer}`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main();
