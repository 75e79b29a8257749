/**
 * Room chat: text messages sent through signaling (`sendChatMessage` request, `chat:message`
 * notification) and the bounded recent history a late joiner gets in its join response.
 * Messages are plain text: clients render them as text (textContent), never as HTML.
 */
import { z } from 'zod';

/** Longest chat message, in characters (UTF-16 code units, as String.length counts). */
export const CHAT_MAX_CHARS = 1000;
/** How many recent messages a room keeps for late joiners (the server's default; CHAT_HISTORY overrides). */
export const CHAT_DEFAULT_HISTORY = 50;

/** Text of a message: trimmed, 1..CHAT_MAX_CHARS characters, no control characters but newline and tab. */
export const chatTextSchema = z
  .string()
  .transform((s) => s.trim())
  .pipe(
    z.string()
      .min(1, 'a chat message cannot be empty')
      .max(CHAT_MAX_CHARS, `a chat message is at most ${CHAT_MAX_CHARS} characters`)
      // eslint-disable-next-line no-control-regex
      .regex(/^[^\u0000-\u0008\u000b-\u001f\u007f]*$/, 'control characters are not allowed in chat messages'),
  );

export const chatMessageSchema = z.object({
  /** Unique in its room, increasing in the order the server accepted the messages. */
  seq: z.number().int().nonnegative(),
  peerId: z.string().min(1).max(64),
  displayName: z.string().min(1).max(48),
  text: z.string().min(1).max(CHAT_MAX_CHARS),
  /** When the server accepted it, ms since the epoch. */
  sentAt: z.number().int().nonnegative(),
}).strict();
export type ChatMessage = z.infer<typeof chatMessageSchema>;
