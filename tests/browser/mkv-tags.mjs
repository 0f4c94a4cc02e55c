#!/usr/bin/env node
// Prints the tags the web page's EBML walker (ingest-server/web/ebml.mjs) finds in an MKV file,
// as JSON: { tags: [{name, value, binary}], metadata: {...}, beforeCluster: {tags, clusterReached} }
// (beforeCluster: what the page reads before it cancels the download). Used by tests/e2e/test_browser.py
// to compare the walker with the suite's own EBML reader on real GetMediaForFragmentList output.
import { readFileSync } from 'node:fs';
import { fragmentMetadata, mkvTags, scanTags } from '../../ingest-server/web/ebml.mjs';

const file = process.argv[2];
if (!file) {
  console.error('usage: mkv-tags.mjs FILE.mkv');
  process.exit(2);
}
const bytes = readFileSync(file);
const tags = mkvTags(bytes);
const beforeCluster = scanTags(bytes, { stopAtCluster: true });
console.log(JSON.stringify({ tags, metadata: fragmentMetadata(tags), beforeCluster }));
