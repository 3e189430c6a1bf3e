// Register-only model of the 1-bit lookup kernels' inner step (2 row tiles x 4 tokens of one 32-column chunk), to see
// what bounds them: w1a5 (two vpermb, one vpaddb, one vpdpbusd per tile and token) against w1a6 (two vpermb, two
// vpdpbusd), with and without the index computation and the vpdpbusd. Tables and weights stay in L1. The clock is
// estimated by a chain of dependent adds (one per cycle).
// Build and run: clang -O2 -march=native Benchmarks/c/lut-loop.c -o /tmp/lut-loop && /tmp/lut-loop
#include <immintrin.h>
#include <stdio.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
#define N 20000000L

static double ghz(void) {
    long x = 1;
    double t = now();
    for (long i = 0; i < 200000000L; i++) __asm__ volatile("add $1, %0\n\tadd $1, %0\n\tadd $1, %0\n\tadd $1, %0" : "+r"(x));
    return 8e8 / (now() - t) / 1e9 + (x == 0);
}
__attribute__((noinline)) void a5(const __m512i *tab, const __m512i *w, __m512i *out, int add, int noidx, int nodp) {
  __m512i acc[8]; for(int i=0;i<8;i++) acc[i]=_mm512_setzero_si512();
  const __m512i m0f=_mm512_set1_epi8(15), g=_mm512_set1_epi32(0x30201000), s0=_mm512_set1_epi8(3), s1=_mm512_set1_epi8(5);
  for(long i=0;i<N;i++){
    __m512i v0=_mm512_loadu_si512(w+(i&7)*2), v1=_mm512_loadu_si512(w+(i&7)*2+1);
    __m512i i10,i20,i11,i21;
    if(noidx){ i10=v0; i20=_mm512_loadu_si512(w+(i&7)*2+16); i11=v1; i21=_mm512_loadu_si512(w+(i&7)*2+17);} else {
    i10=_mm512_ternarylogic_epi32(v0,m0f,g,0xEA); i20=_mm512_ternarylogic_epi32(_mm512_srli_epi16(v0,4),m0f,g,0xEA);
    i11=_mm512_ternarylogic_epi32(v1,m0f,g,0xEA); i21=_mm512_ternarylogic_epi32(_mm512_srli_epi16(v1,4),m0f,g,0xEA);}
    for(int t=0;t<4;t++){ __m512i A=_mm512_loadu_si512(tab+(i&15)*8+2*t), B=_mm512_loadu_si512(tab+(i&15)*8+2*t+1);
      if(add){
      if(nodp){ acc[t]=_mm512_add_epi32(acc[t],_mm512_add_epi8(_mm512_permutexvar_epi8(i10,A),_mm512_permutexvar_epi8(i20,B)));
      acc[4+t]=_mm512_add_epi32(acc[4+t],_mm512_add_epi8(_mm512_permutexvar_epi8(i11,A),_mm512_permutexvar_epi8(i21,B)));} else {
      acc[t]=_mm512_dpbusd_epi32(acc[t],s0,_mm512_add_epi8(_mm512_permutexvar_epi8(i10,A),_mm512_permutexvar_epi8(i20,B)));
      acc[4+t]=_mm512_dpbusd_epi32(acc[4+t],s1,_mm512_add_epi8(_mm512_permutexvar_epi8(i11,A),_mm512_permutexvar_epi8(i21,B)));}
      } else {
      acc[t]=_mm512_dpbusd_epi32(acc[t],s0,_mm512_permutexvar_epi8(i10,A)); acc[t]=_mm512_dpbusd_epi32(acc[t],s0,_mm512_permutexvar_epi8(i20,B));
      acc[4+t]=_mm512_dpbusd_epi32(acc[4+t],s1,_mm512_permutexvar_epi8(i11,A)); acc[4+t]=_mm512_dpbusd_epi32(acc[4+t],s1,_mm512_permutexvar_epi8(i21,B));
      }
    }
  }
  for(int i=0;i<8;i++) out[i]=acc[i];
}
int main(){ double f = ghz(); printf("clock about %.2f GHz\n", f); static __m512i tab[256], w[64], out[8]; for(int i=0;i<256;i++) tab[i]=_mm512_set1_epi8(i); for(int i=0;i<32;i++) w[i]=_mm512_set1_epi8(i*7);
 for(int r=0;r<2;r++) for(int v=0;v<5;v++){ int add=v!=1, noidx=v==2||v==4, nodp=v>=3; double t=now(); a5(tab,w,out,add,noidx,nodp); double d=now()-t; printf("%s idx%d dp%d %.2f ns/iter = %.2f cycles per chunk and token\n", add?"a5":"a6", !noidx, !nodp, d/N*1e9, d/N*1e9*f/8);}
 return ((char*)out)[5];}
