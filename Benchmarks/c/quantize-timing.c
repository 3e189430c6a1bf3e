// Times usm_quantize_act per tier (portable, AVX2, AVX-512) at 250 x 1536 and 250 x 6144 and checks that every tier
// gives the portable loop's bytes over 504 shapes. Build and run from the repository root:
//   clang -O2 -ISources/CUSMKernels/include -ISources/CUSMKernels Benchmarks/c/quantize-timing.c \
//     Sources/CUSMKernels/{kernels,kernels_x86,elementwise,pool}.c -lm -lpthread -o /tmp/qt && /tmp/qt
#include "usm_kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec+t.tv_nsec*1e-9;}
typedef struct {int8_t*q; float*as,*sx,*sxs; int32_t*bs;} out_t;
static out_t run(int isa,const float*x,int n,int k,int ab,int wb,int qmax,int qstride){
  int nb=(k+wb-1)/wb, nab= ab? (k+ab-1)/ab:1; out_t o;
  o.q=calloc(n*qstride,1); o.as=calloc(n*nab+1,4); o.sx=calloc(n*nb,4); o.sxs=calloc(n*nb,4); o.bs=calloc(n*nb,4);
  usm_quantize_act(isa,x,k,n,k,ab,wb,nb,o.q,qstride,o.as,o.sx,o.sxs,o.bs,qmax); return o;}
int main(){
  int ks[]={1536,6144,64,128,77,1024+16,48}, wbs[]={64,16,32,128,1536,48}; int bad=0, cases=0;
  srand(1);
  for(int ki=0;ki<7;ki++) for(int wi=0;wi<6;wi++) for(int abm=0;abm<2;abm++) for(int qm=0;qm<3;qm++) for(int isa=1;isa<=2;isa++){
    int k=ks[ki], wb=wbs[wi]; if(wb>k) wb=k; int ab=abm?wb:0; int qmax=(int[]){127,31,7}[qm]; int n=5; int qs=(k+63)/64*64;
    float*x=malloc(4*n*k); for(int i=0;i<n*k;i++) x[i]=((rand()/(float)RAND_MAX)-0.5f)*(i%7==0?10:1);
    for(int i=0;i<k;i++) x[k+i]=0; // zero row
    for(int i=0;i<k;i++) x[2*k+i]*=1e-40f; // denormals
    if(k>=128) for(int i=0;i<64;i++) x[3*k+64+i]=0; // one zero block
    out_t a=run(0,x,n,k,ab,wb,qmax,qs), b=run(isa,x,n,k,ab,wb,qmax,qs);
    int nb=(k+wb-1)/wb, nab=ab?(k+ab-1)/ab:1;
    int ok=!memcmp(a.q,b.q,n*qs)&&!memcmp(a.as,b.as,4*n*nab)&&!memcmp(a.sx,b.sx,4*n*nb)&&!memcmp(a.sxs,b.sxs,4*n*nb)&&!memcmp(a.bs,b.bs,4*n*nb);
    cases++; if(!ok){bad++; printf("MISMATCH isa %d k %d wb %d ab %d qmax %d\n",isa,k,wb,ab,qmax);}
  }
  printf("%d cases, %d bad\n",cases,bad);
  int n=250; for(int k=1536;k<=6144;k*=4){ float*x=malloc(4*n*k); for(int i=0;i<n*k;i++) x[i]=(rand()/(float)RAND_MAX)-0.5f;
    int nb=k/64; int8_t*q=aligned_alloc(64,n*k); float*as=malloc(4*n*nb),*sx=malloc(4*n*nb),*sxs=malloc(4*n*nb); int32_t*bs=malloc(4*n*nb);
    for(int ab=0;ab<=64;ab+=64) for(int isa=0;isa<=2;isa++){ double best=1e9; for(int r=0;r<20;r++){double t=now(); usm_quantize_act(isa,x,k,n,k,ab,64,nb,q,k,as,sx,sxs,bs,31); t=now()-t; if(t<best)best=t;}
    printf("isa %d k %d ablock %d: %.1f us (%.3f ns/elem)\n",isa,k,ab,best*1e6,best*1e9/(n*k));}}
}
