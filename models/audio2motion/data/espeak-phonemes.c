/*
 * espeak-phonemes: speak one utterance with libespeak-ng and report exact per-phoneme timings.
 * Built at data-generation time (models/audio2motion/data/espeak.ts) into a cache directory:
 *   gcc -O2 -o espeak-phonemes espeak-phonemes.c -lespeak-ng
 * Usage: espeak-phonemes VOICE RATE_WPM PITCH(0-100) RANGE(0-100) OUT.raw < text
 * Writes 16-bit mono PCM (sample rate printed on the first stdout line as "rate N") to OUT.raw,
 * then one line per phoneme event: "<audio_position ms>\t<IPA name>" (espeakEVENT_PHONEME with
 * espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_PHONEME_IPA), and "end <ms>" at the end.
 */
#include <espeak-ng/speak_lib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static FILE *pcm;

static int on_synth(short *wav, int n, espeak_EVENT *ev) {
  if (wav && n > 0) fwrite(wav, sizeof(short), (size_t)n, pcm);
  for (; ev && ev->type != espeakEVENT_LIST_TERMINATED; ev++) {
    if (ev->type == espeakEVENT_PHONEME) printf("%d\t%.8s\n", ev->audio_position, ev->id.string);
    else if (ev->type == espeakEVENT_WORD) printf("%d\t#word\n", ev->audio_position);
    else if (ev->type == espeakEVENT_MSG_TERMINATED) printf("end %d\n", ev->audio_position);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 6) { fprintf(stderr, "usage: %s VOICE RATE PITCH RANGE OUT.raw < text\n", argv[0]); return 2; }
  static char text[65536];
  size_t len = fread(text, 1, sizeof(text) - 1, stdin);
  text[len] = 0;
  int rate = espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, NULL,
                               espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_PHONEME_IPA);
  if (rate <= 0) { fprintf(stderr, "espeak_Initialize failed\n"); return 1; }
  if (espeak_SetVoiceByName(argv[1]) != EE_OK) { fprintf(stderr, "unknown voice %s\n", argv[1]); return 1; }
  espeak_SetParameter(espeakRATE, atoi(argv[2]), 0);
  espeak_SetParameter(espeakPITCH, atoi(argv[3]), 0);
  espeak_SetParameter(espeakRANGE, atoi(argv[4]), 0);
  pcm = fopen(argv[5], "wb");
  if (!pcm) { perror(argv[5]); return 1; }
  espeak_SetSynthCallback(on_synth);
  printf("rate %d\n", rate);
  if (espeak_Synth(text, len + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8, NULL, NULL) != EE_OK) return 1;
  espeak_Synchronize();
  fclose(pcm);
  espeak_Terminate();
  return 0;
}
