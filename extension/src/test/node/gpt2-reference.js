#!/usr/bin/env node
// Writes reference GPT-2 token ids, computed by the gpt-3-encoder npm package's own encoder, for a fixed set of
// test strings. Gpt2TokenizerTest checks that the tokenizer.json built by Gpt2Vocabulary gives the same ids.
//
// Usage: node gpt2-reference.js <node_modules dir holding gpt-3-encoder> <output json>
'use strict';

const fs = require('fs');
const path = require('path');

if (process.argv.length !== 4) {
  console.error('usage: node gpt2-reference.js <node_modules dir> <output json>');
  process.exit(2);
}
const modulesDir = path.resolve(process.argv[2]);
const output = path.resolve(process.argv[3]);
const packageDir = path.join(modulesDir, 'gpt-3-encoder');
const pkg = JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf-8'));
const { encode, decode } = require(packageDir);

// The special token text "<|endoftext|>" is left out: the reference encoder treats it as plain text.
const texts = [
  'Hello world',
  'hello, world!',
  ' leading space',
  '  two leading spaces',
  'multiple    spaces   between words',
  'trailing spaces   ',
  'line one\nline two\n\nline four',
  '\ttabbed\ttext\r\nwith CRLF',
  'The Eiffel Tower is located in the city of',
  'Danielle Darrieux\'s mother tongue is',
  'I don\'t think I\'ll go; they\'re sure we\'ve seen it, she\'d say. It\'s mine.',
  'DON\'T SHOUT, I\'LL LISTEN',
  'Numbers: 0 7 42 1234567890 3.14159 -17 1e10 2024-06-01',
  'Punctuation!? ... --- ((nested)) [brackets] {braces} <angle> @#$%^&*_+=|\\/~`',
  '"quoted" \'single\' «guillemets» “curly”',
  'naïve café, résumé, Ångström, straße, façade',
  'Emoji: 😀 👍🏽 🇫🇷 ❤️ 👨‍👩‍👧',
  '中文文本测试，日本語のテキスト、한국어 텍스트',
  'Русский текст и ελληνικά',
  'مرحبا بالعالم',
  'x',
  ' ',
  '\n',
  'a\u00a0b\u2003c',
  'def f(x):\n    return x ** 2  # square\n',
  'https://example.com/path?query=1&other=two#frag',
  'The quick brown fox jumps over the lazy dog. '.repeat(120).trim(),
];

const cases = texts.map(text => {
  const ids = encode(text);
  if (ids.some(id => typeof id !== 'number')) {
    throw new Error('reference encoder produced an unknown token for ' + JSON.stringify(text));
  }
  if (decode(ids) !== text) {
    throw new Error('reference encoder does not round-trip ' + JSON.stringify(text));
  }
  return { text, ids };
});

fs.mkdirSync(path.dirname(output), { recursive: true });
fs.writeFileSync(output, JSON.stringify({ encoder: pkg.name + '@' + pkg.version, cases }, null, 1) + '\n');
console.log('wrote ' + cases.length + ' reference cases to ' + output);
