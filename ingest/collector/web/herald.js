/**
 * herald.js — Herald's tracker for web pages.
 *
 * This is the readable source. Browsers get herald.min.js, which esbuild makes
 * from this file: edit here, then run `go generate ./ingest/collector/web`.
 * ES2017, no dependencies. It never blocks the page and never throws into it:
 * every public method and listener catches its errors and reports them with
 * console.warn("Herald: ...").
 *
 * Start it:
 *
 *   <script src="https://herald.example.com/herald.js"></script>
 *   <script>Herald.init({writeKey: "WRITEKEY"})</script>
 *
 * or load it async and queue calls until it arrives; each entry is
 * [method, ...args], replayed in order ("init", "track", "forms.send", ...):
 *
 *   <script>window.Herald = window.Herald || {q: []};
 *     Herald.q.push(["init", {writeKey: "WRITEKEY"}]);</script>
 *   <script async src="https://herald.example.com/herald.js"></script>
 *
 * API (window.Herald):
 *
 *   init({writeKey, endpoint, trackPageVisits, sessionTimeout, flushInterval, batchSize})
 *       endpoint: the collector's origin, by default the origin of this
 *       script's src; trackPageVisits: default true; sessionTimeout: minutes
 *       without activity that end a session, default 30; flushInterval: ms
 *       an event may wait for a batch, default 1000; batchSize: events per
 *       request, default 10, at most 100.
 *   uuid()                                  the visitor's id
 *   track(label, params)                    sends action "event.custom" with that label
 *   trackCustomEvent(action, params, label) sends the action, e.g. "cart.add"; an
 *       action is two or more dot-separated parts of letters, digits, "_" or
 *       "-", at most 32 characters; another is not sent (console.warn)
 *   event.track, event.trackCustomEvent     the same two
 *   forms.scan()                            attaches to <form data-herald> added later
 *   forms.send(formType, data, mapping, attributes, callback)
 *       callback(err, response) once the collector accepted ({id}) or refused
 *       the form; while it is unreachable the form waits in the queue
 *   flush()                                 sends the queue now; a Promise
 *
 * Params values are strings, numbers or booleans; others are dropped.
 *
 * Automatic: a "page.visit" on load and on single-page-app navigations
 * (history.pushState/replaceState, popstate; never twice in a row for one
 * URL, and not when only the #fragment changes), label "Visited page
 * {title}", params url, title, referrer (the previous URL after an in-app
 * navigation). Sessions: "session.start" ("Started session") before the
 * first event of a visit, "session.end" ("Session end") when the page is
 * left or hidden, or found timed out later; both carry params session (its
 * id) and, for the end, reason: "pagehide", "hidden" or "timeout".
 *
 * Declarative, on click (one capturing listener on document, so elements
 * added later count):
 *   <button data-herald-event="product.view" data-herald-param-sku="A-12"
 *           data-herald-label="Viewed A-12">  -> params {sku: "A-12"}
 *   (dashes after data-herald-param- become underscores: product-id -> product_id)
 *
 * Forms, sent on submit to /v1/forms:
 *   <form data-herald="newsletter">             formType "newsletter"
 *     <input name="mail" data-herald="email">   data.mail, mapping.email = "mail"
 *     <input data-herald-attribute="company_size">  data.company_size, in attributes
 *     <input type="checkbox" name="newsletter_agreement"
 *            data-herald="newsletterAgreement" data-herald-value="enabled">
 *                                               sent only when checked, as "enabled"
 *   Fields without data-herald or data-herald-attribute, passwords, files and
 *   empty fields are not sent; a radio group sends its checked radio (mark
 *   every radio). The page's submit is never prevented: when the form
 *   navigates away the form goes with sendBeacon, else with fetch(keepalive).
 *
 * Transport: events wait in a queue (persisted in localStorage "herald_queue",
 * at most 500, so a reload does not lose them) and go in batches to
 * POST {endpoint}/v1/events?key=WRITEKEY as a JSON array, text/plain (a CORS
 * simple request), with fetch(keepalive); on pagehide or when the page is
 * hidden, with navigator.sendBeacon. A network error, 429 or 5xx is retried
 * with the same event ids (the collector deduplicates) after Retry-After or a
 * backoff of 1 s doubling to 60 s; another refusal (400, 401, 403, 413, 415)
 * drops the batch with a warning. A collector on another origin than the
 * page must answer CORS (Access-Control-Allow-Origin, and
 * Access-Control-Expose-Headers: Retry-After), else every answer reads as a
 * network error and is retried.
 *
 * Visitor and session state are first-party: localStorage "herald_uuid" and
 * "herald_session", or cookies of those names (SameSite=Lax, 2 years) where
 * localStorage is unavailable.
 */
(function (window, document) {
  'use strict';

  var ACTION = /^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)+$/;
  var MAX_QUEUE = 500;
  var MAX_BATCH = 100; // the collector's limit per request
  var MAX_BACKOFF = 60000;
  var K_UUID = 'herald_uuid';
  var K_SESSION = 'herald_session';
  var K_QUEUE = 'herald_queue';

  if (window.Herald && window.Herald.uuid) return; // loaded twice

  // The collector is by default where this script came from.
  var scriptOrigin = location.origin;
  try {
    scriptOrigin = new URL(document.currentScript.src).origin;
  } catch (e) {}

  var config = null; // set by init
  var queue = []; // requests to send: {k: 'e' (event) or 'f' (form), b: body}
  var inflight = []; // the items of the fetch under way
  var pending = []; // submitted forms waiting to learn whether the page stays
  var callbacks = {}; // form id -> callback of forms.send
  var current = null; // the running drain, a Promise
  var timer = 0;
  var waiting = false; // a retry is planned: do not send before it
  var failing = false; // the last attempt failed
  var attempt = 0;
  var visitor = ''; // cached uuid
  var session = null; // in-memory copy of the session state
  var ended = ''; // the session whose end this page has sent
  var lastURL = '';

  function warn(msg) {
    try {
      console.warn('Herald: ' + msg);
    } catch (e) {}
  }

  // guard wraps a function so that it never throws into the page.
  function guard(fn) {
    return function () {
      try {
        return fn.apply(this, arguments);
      } catch (e) {
        warn((e && e.message) || e);
      }
    };
  }

  // Storage: localStorage when it works, else a first-party cookie.
  var store = null;
  try {
    store = window.localStorage;
    store.setItem(K_QUEUE + '_', '1');
    store.removeItem(K_QUEUE + '_');
  } catch (e) {
    store = null;
  }

  function get(key) {
    var v = null;
    try {
      v = store && store.getItem(key);
    } catch (e) {}
    if (v == null) {
      var m = document.cookie.match('(?:^|; )' + key + '=([^;]*)');
      v = m && decodeURIComponent(m[1]);
    }
    return v;
  }

  // set keeps value under key; the cookie fallback only when cookie is true
  // (the queue is too large for a cookie).
  function set(key, value, cookie) {
    try {
      if (store) return store.setItem(key, value);
    } catch (e) {}
    if (cookie) {
      document.cookie = key + '=' + encodeURIComponent(value) + '; Max-Age=63072000; Path=/; SameSite=Lax';
    }
  }

  function read(key) {
    try {
      return JSON.parse(get(key));
    } catch (e) {}
  }

  function persist() {
    set(K_QUEUE, JSON.stringify(queue));
  }

  // newId makes a unique id: crypto.randomUUID, else 32 random hex digits.
  function newId() {
    var c = window.crypto;
    if (c && c.randomUUID) return c.randomUUID();
    var b = new Uint8Array(16);
    var s = '';
    var i;
    if (c && c.getRandomValues) c.getRandomValues(b);
    else for (i = 0; i < 16; i++) b[i] = Math.random() * 256;
    for (i = 0; i < 16; i++) s += (b[i] + 256).toString(16).slice(1);
    return s;
  }

  function uuid() {
    if (!visitor) {
      visitor = get(K_UUID);
      if (!visitor) set(K_UUID, (visitor = newId()), true);
    }
    return visitor;
  }

  function ready() {
    return config || warn('call Herald.init first');
  }

  function event(action, label, params, time) {
    return {
      k: 'e',
      b: {id: newId(), action: action, label: label, uuid: uuid(), time: new Date(time).toISOString(), params: params},
    };
  }

  // clean keeps the params whose values are strings, numbers or booleans.
  function clean(params) {
    var out = {};
    if (params && typeof params == 'object') {
      Object.keys(params).forEach(function (k) {
        var v = params[k];
        var t = typeof v;
        if (t == 'string' || t == 'boolean' || (t == 'number' && isFinite(v))) out[k] = v;
        else warn('param "' + k + '" dropped: values must be strings, numbers or booleans');
      });
    }
    return out;
  }

  // Sessions are cut here, in the browser, not by timers on the server: the
  // browser sees the visitor leave (pagehide, or the page hidden) and
  // sendBeacon delivers "session.end" even as the tab closes. The last
  // activity time is kept in storage, so a session spans tabs and reloads.
  // The limit: a crashed or killed browser sends nothing; then the next event
  // notices the timed-out session and sends its "session.end" (reason
  // "timeout", at the time of the last activity) before "session.start".
  // An end sent on pagehide is followed by more events when the visitor goes
  // on within the timeout (the next page of the site); the session keeps its
  // id, and the last "session.end" of a session id is the real one.
  function touch(now) {
    var s = read(K_SESSION) || session;
    var out = [];
    if (!s || !(now - s.last <= config.sessionTimeout)) {
      if (s && s.id && s.last > 0 && !s.ended) {
        out.push(event('session.end', 'Session end', {session: s.id, reason: 'timeout'}, s.last));
      }
      s = {id: newId()};
      out.push(event('session.start', 'Started session', {session: s.id, url: location.href, referrer: document.referrer}, now));
    }
    s.last = now;
    s.ended = false;
    set(K_SESSION, JSON.stringify((session = s)), true);
    return out;
  }

  function send(action, label, params) {
    var now = Date.now();
    touch(now)
      .concat(event(action, label, params, now))
      .forEach(push);
    persist();
    schedule();
  }

  function push(item) {
    queue.push(item);
    if (queue.length > MAX_QUEUE) {
      queue.splice(0, queue.length - MAX_QUEUE);
      warn('queue full: dropped the oldest events');
    }
  }

  function custom(action, params, label) {
    if (!ready()) return;
    if (typeof action != 'string' || action.length > 32 || !ACTION.test(action)) {
      return warn(
        'action "' + action + '" not sent: an action is two or more dot-separated parts of letters, digits, "_" or "-", at most 32 characters, like "cart.add"'
      );
    }
    send(action, label ? String(label) : action, clean(params));
  }

  function track(label, params) {
    if (!label) return warn('track needs a label');
    custom('event.custom', params, label);
  }

  // Transport.

  function url(items) {
    return config.endpoint + (items[0].k == 'f' ? '/v1/forms' : '/v1/events') + '?key=' + encodeURIComponent(config.writeKey);
  }

  // next returns the next request's items: a form alone, or up to n events.
  function next(list, n) {
    var i = 1;
    if (list[0].k == 'e') while (i < n && list[i] && list[i].k == 'e') i++;
    return list.slice(0, i);
  }

  function body(items) {
    return JSON.stringify(
      items[0].k == 'f'
        ? items[0].b
        : items.map(function (i) {
            return i.b;
          })
    );
  }

  function remove(items) {
    queue = queue.filter(function (i) {
      return items.indexOf(i) < 0;
    });
    persist();
  }

  // answer hands the collector's answer to the form's callback, if any.
  function answer(items, err, res) {
    var id = items[0].b.id;
    var cb = callbacks[id];
    delete callbacks[id];
    if (cb) guard(cb)(err, res);
  }

  // schedule plans the next send: now when a batch is full or a form waits,
  // else after flushInterval.
  function schedule() {
    if (!config || current || waiting || !queue.length) return;
    if (queue.length >= config.batchSize || queue.some(function (i) { return i.k == 'f'; })) drain();
    else if (!timer) timer = setTimeout(drain, config.flushInterval);
  }

  function drain() {
    clearTimeout(timer);
    timer = 0;
    waiting = false;
    if (!current) {
      current = run()
        .catch(warn)
        .then(function () {
          current = null;
          inflight = [];
          schedule(); // what came in at the very end
        });
    }
    return current;
  }

  async function run() {
    while (config && queue.length && !waiting) {
      var items = (inflight = next(queue, config.batchSize));
      var b = body(items);
      var res = null;
      try {
        // keepalive lets the request outlive the page; it is limited to 64 KB.
        res = await fetch(url(items), {method: 'POST', body: b, keepalive: b.length < 60000});
      } catch (e) {}
      var status = res ? res.status : 0;
      if (!res || status == 429 || status >= 500) {
        // Keep the items and try again later, with the same ids.
        var after = res && res.headers.get('Retry-After');
        var delay = after ? (+after >= 0 ? after * 1000 : Date.parse(after) - Date.now()) : 0;
        delay = Math.min(delay > 0 ? delay : Math.min(MAX_BACKOFF, 1000 * Math.pow(2, attempt)), 3600000);
        attempt++;
        failing = waiting = true;
        timer = setTimeout(drain, delay);
        return;
      }
      failing = false;
      attempt = 0;
      remove(items);
      var json = await res.json().catch(function () {
        return {};
      });
      if (status >= 300) {
        warn('collector answered ' + status + ' (' + (json.error || 'refused') + '): dropped ' + items.length + (items[0].k == 'f' ? ' form' : ' event(s)'));
        answer(items, new Error('herald: collector answered ' + status));
      } else if (items[0].k == 'f') {
        answer(items, null, json);
      } else {
        (json.errors || []).forEach(function (e) {
          var ev = items[e.index];
          warn('event ' + (ev ? '"' + ev.b.action + '" ' : '') + 'refused: ' + e.error);
        });
      }
      inflight = [];
    }
  }

  // beacon sends the queue with navigator.sendBeacon, which survives the page.
  // Items of a fetch under way stay: their keepalive request outlives the
  // page, and they are persisted until it answers. While the collector is
  // failing, beaconed items are kept too (a beacon's answer is never known),
  // so the next page sends them again, with the same ids.
  function beacon() {
    clearTimeout(timer);
    timer = 0;
    var rest = queue.filter(function (i) {
      return inflight.indexOf(i) < 0;
    });
    var sent = [];
    while (rest.length) {
      var items = next(rest, MAX_BATCH);
      if (!navigator.sendBeacon(url(items), body(items))) break;
      sent = sent.concat(items);
      rest = rest.slice(items.length);
    }
    if (!failing) remove(sent);
    else persist();
  }

  // leave runs on pagehide and when the page is hidden: it ends the session
  // (once per session on this page, and only when there was activity since
  // the last end) and sends everything with sendBeacon.
  function leave(e) {
    if (!config || (e.type != 'pagehide' && document.visibilityState != 'hidden')) return;
    pending.splice(0).forEach(push);
    var s = read(K_SESSION) || session;
    var now = Date.now();
    if (s && s.id && !s.ended && s.id != ended) {
      var late = now - s.last > config.sessionTimeout;
      ended = s.id;
      push(event('session.end', 'Session end', {session: s.id, reason: late ? 'timeout' : e.type == 'pagehide' ? 'pagehide' : 'hidden'}, late ? s.last : now));
      s.ended = true;
      set(K_SESSION, JSON.stringify((session = s)), true);
    }
    beacon();
  }

  // Page visits.

  // visit sends a page.visit unless only the #fragment changed (a jump to an
  // anchor is no new page).
  function visit() {
    var href = location.href;
    if (href.split('#')[0] == lastURL.split('#')[0]) return;
    var referrer = lastURL || document.referrer;
    var title = document.title;
    lastURL = href;
    send('page.visit', 'Visited page ' + (title || location.pathname), {url: href, title: title, referrer: referrer});
  }

  function watchHistory() {
    ['pushState', 'replaceState'].forEach(function (m) {
      var orig = history[m];
      history[m] = function () {
        var r = orig.apply(this, arguments);
        setTimeout(guard(visit)); // after the app has set the new title
        return r;
      };
    });
    window.addEventListener('popstate', guard(visit));
    window.addEventListener(
      'pageshow',
      guard(function (e) {
        if (e.persisted) {
          lastURL = ''; // back from the back-forward cache: a new visit
          visit();
        }
      })
    );
  }

  // Declarative events.

  function onClick(e) {
    var el = e.target && e.target.closest && e.target.closest('[data-herald-event]');
    if (!el) return;
    var params = {};
    [].forEach.call(el.attributes, function (a) {
      if (a.name.indexOf('data-herald-param-') == 0) params[a.name.slice(18).replace(/-/g, '_')] = a.value;
    });
    custom(el.getAttribute('data-herald-event'), params, el.getAttribute('data-herald-label'));
  }

  // Forms.

  function form(formType, data, mapping, attributes, label) {
    var b = {
      id: newId(),
      formType: formType,
      uuid: uuid(),
      time: new Date().toISOString(),
      data: data || {},
      mapping: mapping || {},
      attributes: attributes || [],
    };
    if (label) b.label = label;
    return {k: 'f', b: b};
  }

  // collect reads the fields of a form that carry data-herald or
  // data-herald-attribute.
  function collect(f) {
    var data = {};
    var mapping = {};
    var attributes = [];
    [].forEach.call(f.elements, function (el) {
      var field = el.getAttribute('data-herald');
      var attr = el.getAttribute('data-herald-attribute');
      var type = el.type;
      var value = el.value;
      if ((!field && !attr) || el.disabled || /^(password|file|submit|button|reset|image)$/.test(type)) return;
      if (type == 'checkbox' || type == 'radio') {
        if (!el.checked) return;
        value = el.getAttribute('data-herald-value') || value;
      } else if (type == 'select-multiple') {
        value = [].filter
          .call(el.options, function (o) {
            return o.selected;
          })
          .map(function (o) {
            return o.value;
          })
          .join(',');
      }
      if (value === '') return;
      var key = attr || el.name || field;
      data[key] = data[key] != null && type == 'checkbox' ? data[key] + ',' + value : value;
      if (!attr) mapping[field] = key;
      else if (attributes.indexOf(attr) < 0) attributes.push(attr);
    });
    return form(f.getAttribute('data-herald'), data, mapping, attributes, f.getAttribute('data-herald-label'));
  }

  // onSubmit never prevents the submit. The form is sent once the submit
  // event is over, when the page's own handlers have decided: with fetch
  // (keepalive) when the page stays (it called preventDefault, or the form
  // targets another window), with sendBeacon when it navigates away. Should
  // the page go before that, leave sends it.
  function onSubmit(e) {
    var f = e.currentTarget;
    var item = collect(f);
    pending.push(item);
    setTimeout(
      guard(function () {
        var i = pending.indexOf(item);
        if (i < 0) return; // leave sent it
        pending.splice(i, 1);
        push(item);
        persist();
        var t = f.getAttribute('target');
        if (e.defaultPrevented || (t && t != '_self' && t != '_top' && t != '_parent')) drain();
        else beacon();
      })
    );
  }

  function scan() {
    if (!ready()) return;
    [].forEach.call(document.querySelectorAll('form[data-herald]'), function (f) {
      if (!f.__herald) {
        f.__herald = true;
        f.addEventListener('submit', guard(onSubmit));
      }
    });
  }

  function sendForm(formType, data, mapping, attributes, callback) {
    if (!ready()) return;
    var item = form(formType, data, mapping, attributes);
    if (typeof callback == 'function') callbacks[item.b.id] = callback;
    push(item);
    persist();
    drain();
  }

  function init(o) {
    if (config) return warn('init called twice; ignored');
    o = o || {};
    if (!o.writeKey) return warn('init needs a writeKey');
    config = {
      writeKey: String(o.writeKey),
      endpoint: String(o.endpoint || scriptOrigin).replace(/\/+$/, ''),
      sessionTimeout: (o.sessionTimeout > 0 ? o.sessionTimeout : 30) * 60000,
      flushInterval: o.flushInterval >= 0 ? o.flushInterval : 1000,
      batchSize: Math.max(1, Math.min(MAX_BATCH, o.batchSize | 0 || 10)),
    };
    // What a previous page left unsent.
    var saved = read(K_QUEUE);
    if (Array.isArray(saved)) {
      saved.forEach(function (i) {
        if (i && i.b && (i.k == 'e' || i.k == 'f')) push(i);
      });
    }
    document.addEventListener('click', guard(onClick), true);
    window.addEventListener('pagehide', guard(leave));
    document.addEventListener('visibilitychange', guard(leave));
    if (document.readyState == 'loading') document.addEventListener('DOMContentLoaded', guard(scan));
    scan();
    if (o.trackPageVisits !== false) {
      watchHistory();
      visit();
    }
    schedule();
  }

  function call(args) {
    var path = String(args[0]).split('.');
    var fn = api;
    var self;
    path.forEach(function (p) {
      self = fn;
      fn = fn && fn[p];
    });
    if (typeof fn == 'function') fn.apply(self, [].slice.call(args, 1));
    else warn('unknown method ' + args[0]);
  }

  var api = {
    init: guard(init),
    uuid: guard(uuid),
    track: guard(track),
    trackCustomEvent: guard(custom),
    forms: {scan: guard(scan), send: guard(sendForm)},
    flush: function () {
      try {
        if (config) return drain();
      } catch (e) {
        warn(e.message);
      }
      return Promise.resolve();
    },
    // After load, Herald.q.push([method, ...args]) still works.
    q: {
      push: guard(function () {
        [].forEach.call(arguments, call);
      }),
    },
  };
  api.event = {track: api.track, trackCustomEvent: api.trackCustomEvent};

  var early = window.Herald && window.Herald.q;
  window.Herald = api;
  if (Array.isArray(early)) early.forEach(guard(call));
})(window, document);
