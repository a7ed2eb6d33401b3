// The user's browser for the Node clients: follows an authorization request through
// Gatehouse's real login and consent pages with fetch and a cookie jar, and returns the
// redirect back to the client (which is never fetched). No page is skipped or forged: every
// form is read from the page Gatehouse served, CSRF token included.

const MAX_STEPS = 8;

/** Decodes the few HTML entities Gatehouse's templates (askama) write into attributes. */
function unescapeHtml(text) {
  return text
    .replace(/&#(\d+);/g, (_, n) => String.fromCodePoint(Number(n)))
    .replace(/&#x([0-9a-f]+);/gi, (_, n) => String.fromCodePoint(parseInt(n, 16)))
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

function attribute(tag, name) {
  const match = tag.match(new RegExp(`\\s${name}="([^"]*)"`, 'i'));
  return match ? unescapeHtml(match[1]) : undefined;
}

/** The `<form method="post">` of `html` whose action is `action` (path or URL), as fields. */
export function postForm(html, action, base) {
  const want = new URL(action, base).href;
  for (const [, open, body] of html.matchAll(/(<form\b[^>]*>)([\s\S]*?)<\/form>/gi)) {
    const formAction = attribute(open, 'action');
    if ((attribute(open, 'method') ?? '').toLowerCase() !== 'post' || formAction === undefined) {
      continue;
    }
    if (new URL(formAction, base).href.split('?')[0] !== want.split('?')[0]) {
      continue;
    }
    const fields = new URLSearchParams();
    for (const [input] of body.matchAll(/<input\b[^>]*>/gi)) {
      const name = attribute(input, 'name');
      const value = attribute(input, 'value');
      if (name !== undefined && value !== undefined) {
        fields.set(name, value);
      }
    }
    return { action: new URL(formAction, base).href, fields };
  }
  throw new Error(`no POST form to ${action} on the page:\n${html.slice(0, 2000)}`);
}

export class Browser {
  constructor(base) {
    this.base = new URL(base);
    this.cookies = new Map();
  }

  async request(url, init = {}) {
    const headers = new Headers(init.headers);
    if (this.cookies.size) {
      headers.set('cookie', [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    const response = await fetch(url, { ...init, headers, redirect: 'manual' });
    for (const line of response.headers.getSetCookie()) {
      const [pair, ...attributes] = line.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age=0\s*$/i.test(a));
      if (expired || value === '') {
        this.cookies.delete(name);
      } else {
        this.cookies.set(name, value);
      }
    }
    return response;
  }

  async expect(response, status, what) {
    if (response.status !== status) {
      const body = await response.text().catch(() => '');
      throw new Error(`${what}: ${response.status}, expected ${status}: ${body.slice(0, 1000)}`);
    }
    return response;
  }

  location(response) {
    const raw = response.headers.get('location');
    if (!raw) {
      throw new Error(`${response.status} without Location`);
    }
    return new URL(raw, this.base).href;
  }

  /** Signs in on the login page at `loginUrl`; where Gatehouse sends the browser next. */
  async logIn(loginUrl, email, password) {
    const page = await this.expect(await this.request(loginUrl), 200, `GET ${loginUrl}`);
    const form = postForm(await page.text(), '/login', this.base);
    form.fields.set('email', email);
    form.fields.set('password', password);
    const res = await this.request(form.action, { method: 'POST', body: form.fields });
    await this.expect(res, 303, 'POST /login');
    return this.location(res);
  }

  /**
   * Follows the authorization request `url` through login (when asked) and consent (when
   * asked, allowing) to the redirect to `redirectUri`; returns that redirect's URL.
   */
  async authorize(url, { email, password, redirectUri }) {
    const onLoginPage = (to) => new URL(to).origin === this.base.origin && new URL(to).pathname === '/login';
    let next = url;
    for (let step = 0; step < MAX_STEPS; step++) {
      if (next.startsWith(redirectUri)) {
        return next;
      }
      if (onLoginPage(next)) {
        next = await this.logIn(next, email, password);
        continue;
      }
      const res = await this.request(next);
      if (res.status === 302 || res.status === 303) {
        next = this.location(res);
        continue;
      }
      await this.expect(res, 200, `GET ${next}`);
      // The consent page: allow.
      const html = await res.text();
      const form = postForm(html, new URL(next).pathname, this.base);
      form.fields.set('decision', 'allow');
      const answer = await this.request(form.action, { method: 'POST', body: form.fields });
      await this.expect(answer, 303, `POST ${form.action} (consent)`);
      next = this.location(answer);
    }
    throw new Error(`the authorization request did not end within ${MAX_STEPS} steps`);
  }
}
