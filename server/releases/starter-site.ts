// Copies tenants-template/ into a new release folder, filling in the tenant's name.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const TEMPLATE_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../tenants-template');

const TEXT_EXT = new Set(['.html', '.js', '.json', '.css', '.txt', '.md']);

export function copyStarterSite(destDir: string, vars: { tenant: string; url: string }, templateDir = TEMPLATE_DIR): { files: number; bytes: number } {
  let files = 0;
  let bytes = 0;
  const copy = (from: string, to: string) => {
    fs.mkdirSync(to, { recursive: true });
    for (const ent of fs.readdirSync(from, { withFileTypes: true })) {
      const src = path.join(from, ent.name);
      const dst = path.join(to, ent.name);
      if (ent.isDirectory()) copy(src, dst);
      else if (ent.isFile()) {
        let data = fs.readFileSync(src);
        if (TEXT_EXT.has(path.extname(ent.name))) {
          data = Buffer.from(data.toString('utf8').replaceAll('{{tenant}}', vars.tenant).replaceAll('{{url}}', vars.url));
        }
        fs.writeFileSync(dst, data);
        files++;
        bytes += data.length;
      }
    }
  };
  copy(templateDir, destDir);
  return { files, bytes };
}
