/**
 * The call's chat panel: the room's messages with sender names and times, a composer, and an unread
 * badge on the toggle button while the panel is closed. Every message is rendered with textContent
 * only: a message is text, never HTML.
 */
import { CHAT_MAX_CHARS, type ChatMessage } from '../../../protocol/src/chat.ts';

export interface ChatPanelOptions {
  /** `#chat`: the panel (hidden while closed). */
  panel: HTMLElement;
  /** `#toggle-chat`: opens and closes the panel; holds the unread badge. */
  toggle: HTMLButtonElement;
  /** Sends a message; rejects with an error carrying `body.code` (a SignalingError) when refused. */
  send: (text: string) => Promise<ChatMessage>;
}

export class ChatPanel {
  readonly #panel: HTMLElement;
  readonly #toggle: HTMLButtonElement;
  readonly #badge: HTMLElement;
  readonly #list: HTMLOListElement;
  readonly #form: HTMLFormElement;
  readonly #input: HTMLTextAreaElement;
  readonly #error: HTMLElement;
  readonly #send: ChatPanelOptions['send'];
  readonly #seen = new Set<number>();
  #ownPeerId: string | undefined;
  #unread = 0;

  constructor(opts: ChatPanelOptions) {
    this.#panel = opts.panel;
    this.#toggle = opts.toggle;
    this.#send = opts.send;
    this.#panel.replaceChildren();
    this.#panel.setAttribute('aria-label', 'Chat');
    const heading = document.createElement('h2');
    heading.textContent = 'Chat';
    this.#list = document.createElement('ol');
    this.#list.className = 'chat-messages';
    this.#list.setAttribute('aria-live', 'polite');
    this.#error = document.createElement('p');
    this.#error.className = 'chat-error';
    this.#error.setAttribute('role', 'alert');
    this.#error.hidden = true;
    this.#form = document.createElement('form');
    this.#form.className = 'chat-form';
    this.#input = document.createElement('textarea');
    this.#input.id = 'chat-input';
    this.#input.rows = 2;
    this.#input.maxLength = CHAT_MAX_CHARS;
    this.#input.placeholder = 'Message everyone (Enter to send)';
    this.#input.setAttribute('aria-label', 'Chat message');
    const sendButton = document.createElement('button');
    sendButton.type = 'submit';
    sendButton.id = 'chat-send';
    sendButton.textContent = 'Send';
    this.#form.append(this.#input, sendButton);
    this.#panel.append(heading, this.#list, this.#error, this.#form);

    this.#badge = document.createElement('span');
    this.#badge.className = 'badge';
    this.#badge.id = 'chat-unread';
    this.#badge.hidden = true;
    this.#toggle.append(this.#badge);
    this.#toggle.setAttribute('aria-controls', this.#panel.id);
    this.#toggle.addEventListener('click', () => this.setOpen(this.#panel.hidden));
    this.#form.addEventListener('submit', (ev) => {
      ev.preventDefault();
      void this.#submit();
    });
    this.#input.addEventListener('keydown', (ev) => {
      if (ev.key === 'Enter' && !ev.shiftKey) {
        ev.preventDefault();
        void this.#submit();
      }
    });
    this.setOpen(false);
  }

  get open(): boolean {
    return !this.#panel.hidden;
  }

  get unread(): number {
    return this.#unread;
  }

  setOpen(open: boolean): void {
    this.#panel.hidden = !open;
    this.#toggle.setAttribute('aria-expanded', String(open));
    if (open) {
      this.#setUnread(0);
      this.#list.lastElementChild?.scrollIntoView({ block: 'end' });
      this.#input.focus();
    }
  }

  /** A new call: forget the old messages, show the room's history (not counted as unread). */
  reset(ownPeerId: string | undefined, history: ChatMessage[]): void {
    this.#ownPeerId = ownPeerId;
    this.#seen.clear();
    this.#list.replaceChildren();
    this.#showError(null);
    this.#setUnread(0);
    for (const m of history) this.#append(m);
  }

  /** A message from someone else: shown, and counted as unread while the panel is closed. */
  receive(message: ChatMessage): void {
    if (!this.#append(message)) return;
    if (!this.open) this.#setUnread(this.#unread + 1);
  }

  async #submit(): Promise<void> {
    const text = this.#input.value.trim();
    if (!text) return;
    try {
      const sent = await this.#send(text);
      this.#input.value = '';
      this.#showError(null);
      this.#append(sent);
    } catch (err) {
      const body = (err as { body?: { code?: string } }).body;
      const message = body?.code === 'RATE_LIMITED' ? `Slow down: ${(err as Error).message}` : `Not sent: ${(err as Error).message}`;
      this.#showError(message, body?.code ?? 'ERROR');
    }
  }

  /** Adds a message in order of its sequence number; false if it was shown already. */
  #append(m: ChatMessage): boolean {
    if (this.#seen.has(m.seq)) return false;
    this.#seen.add(m.seq);
    const item = document.createElement('li');
    item.className = m.peerId === this.#ownPeerId ? 'chat-message own' : 'chat-message';
    item.dataset['seq'] = String(m.seq);
    item.dataset['peerId'] = m.peerId;
    const meta = document.createElement('div');
    meta.className = 'chat-meta';
    const who = document.createElement('span');
    who.className = 'chat-sender';
    who.textContent = m.peerId === this.#ownPeerId ? `${m.displayName} (you)` : m.displayName;
    const when = document.createElement('time');
    when.className = 'chat-time';
    when.dateTime = new Date(m.sentAt).toISOString();
    when.textContent = new Date(m.sentAt).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
    meta.append(who, ' ', when);
    const text = document.createElement('div');
    text.className = 'chat-text';
    text.textContent = m.text; // text, never HTML
    item.append(meta, text);
    const after = [...this.#list.children].find((el) => Number((el as HTMLElement).dataset['seq']) > m.seq);
    this.#list.insertBefore(item, after ?? null);
    if (this.open) item.scrollIntoView({ block: 'end' });
    return true;
  }

  #setUnread(n: number): void {
    this.#unread = n;
    this.#badge.textContent = n > 99 ? '99+' : String(n);
    this.#badge.hidden = n === 0;
    this.#toggle.setAttribute('aria-label', n > 0 ? `Chat, ${n} unread` : 'Chat');
  }

  #showError(message: string | null, code?: string): void {
    this.#error.hidden = message === null;
    this.#error.textContent = message ?? '';
    if (code) this.#error.dataset['code'] = code;
    else delete this.#error.dataset['code'];
  }
}
