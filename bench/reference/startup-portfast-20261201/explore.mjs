// exploratory interleaved start-up comparison (same measure as bench/startup.mjs: spawn -> first 200 through the proxy port)
import { spawn } from 'node:child_process';
import http from 'node:http';
import { readdirSync, readFileSync } from 'node:fs';
const IP='127.0.0.1', PB=18480, PP=18482;
const CHP='/work/wt/portfast/bench/node_modules/configurable-http-proxy/bin/configurable-http-proxy';
const common=['--ip',IP,'--port',String(PP),'--api-ip',IP,'--api-port',String(PP+1),'--default-target',`http://${IP}:${PB}`];
const RUNS=Number(process.argv[2]??5);
const C = JSON.parse(process.argv[3]);
const get=(port,path)=>new Promise(res=>{const r=http.get({host:IP,port,path,agent:false},x=>{x.resume();x.on('end',()=>res(x.statusCode));x.on('error',()=>res(0));});r.on('error',()=>res(0));r.setTimeout(2000,()=>r.destroy());});
const sleep=ms=>new Promise(r=>setTimeout(r,ms));
function rss(pgid){let t=0;for(const p of readdirSync('/proc')){if(!/^\d+$/.test(p))continue;try{const st=readFileSync(`/proc/${p}/stat`,'utf8');const f=st.slice(st.lastIndexOf(')')+2).split(' ');if(Number(f[2])!==pgid)continue;const m=/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${p}/status`,'utf8'));if(m)t+=Number(m[1]);}catch{}}return t/1024;}
const backend=spawn(process.execPath,['/work/wt/portfast/bench/backend.js',String(PB),'S'],{stdio:'ignore',detached:true});
process.on('exit',()=>{try{process.kill(-backend.pid,'SIGKILL')}catch{}});
while((await get(PB,'/'))!==200) await sleep(10);
const res=Object.fromEntries(C.map(c=>[c.name,[]]));
for(let r=0;r<RUNS;r++) for(let i=0;i<C.length;i++){const c=C[(i+r)%C.length];
  const argv=c.main==='chp'?[CHP,...common]:[c.main,...common,...(c.args??[])];
  const t0=process.hrtime.bigint();
  const ch=spawn(process.execPath,argv,{detached:true,stdio:'ignore',env:{...process.env,CONFIGPROXY_AUTH_TOKEN:'x',...(c.env??{})}});
  while(!(ch.exitCode===null&&(await get(PP,'/startup'))===200)) await sleep(5);
  const ms=Number(process.hrtime.bigint()-t0)/1e6; const m=rss(ch.pid);
  res[c.name].push([ms,m]);
  process.kill(-ch.pid,'SIGTERM'); await new Promise(r=>ch.exitCode!==null?r():ch.once('exit',r)); const u=Date.now()+5000; while(rss(ch.pid)>0&&Date.now()<u) await sleep(20);
}
const med=a=>{const s=[...a].sort((x,y)=>x-y);const n=s.length;return n%2?s[(n-1)/2]:(s[n/2-1]+s[n/2])/2;};
const chp=med(res.chp.map(x=>x[0])), chpR=med(res.chp.map(x=>x[1]));
for(const c of C){const t=med(res[c.name].map(x=>x[0])), m=med(res[c.name].map(x=>x[1]));console.log(`${c.name.padEnd(22)} ready ${t.toFixed(0).padStart(4)} ms (${(t/chp).toFixed(2)}x)  rss ${m.toFixed(1)} MiB (${(m/chpR).toFixed(2)}x)   all: ${res[c.name].map(x=>x[0].toFixed(0)).join(' ')}`);}
try { process.kill(-backend.pid, 'SIGKILL'); } catch {}
process.exit(0);
