// A Better Auth server as a front end of this API would run it: email and password sign-up,
// the jwt() plugin, UUID user ids, PostgreSQL through `pg`. Started by tests/test_better_auth.py.
//
//   DATABASE_URL=postgresql://... BETTER_AUTH_SECRET=... node tests/better_auth/server.mjs [eddsa|hs256]
//
// eddsa (the plugin's default): tokens signed with Ed25519, public keys at /api/auth/jwks.
// hs256: tokens signed with BETTER_AUTH_SECRET, as apps that share that secret do.
// Listens on 127.0.0.1 on a free port and prints {"url": ...} on stdout once it serves.
import { createServer } from "node:http";
import { betterAuth } from "better-auth";
import { getMigrations } from "better-auth/db/migration";
import { toNodeHandler } from "better-auth/node";
import { jwt } from "better-auth/plugins";
import { SignJWT } from "jose";
import pg from "pg";

const mode = process.argv[2] ?? "eddsa";
const secret = process.env.BETTER_AUTH_SECRET;

const server = createServer();
await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
const baseURL = `http://127.0.0.1:${server.address().port}`;

const signHs256 = (payload) =>
  new SignJWT(payload).setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(new TextEncoder().encode(secret));

const auth = betterAuth({
  baseURL,
  secret,
  database: new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 4 }),
  emailAndPassword: { enabled: true },
  // This API's user ids are UUIDs; Better Auth's default ids are not.
  advanced: { database: { generateId: "uuid" } },
  plugins: [
    jwt(
      mode === "hs256"
        ? // A custom signer turns the plugin's own key set off, and the plugin then wants a JWKS
          // URL and algorithm to advertise in OpenID metadata. An HS256 secret has no public
          // key: neither is used by anything here.
          {
            jwt: { sign: signHs256 },
            jwks: { remoteUrl: `${baseURL}/api/auth/jwks`, keyPairConfig: { alg: "EdDSA" } },
          }
        : {},
    ),
  ],
});

const { runMigrations } = await getMigrations(auth.options);
await runMigrations();

server.on("request", toNodeHandler(auth));
process.stdout.write(JSON.stringify({ url: baseURL }) + "\n");

const stop = () => server.close(() => process.exit(0));
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
