/* dbg: a small kernel for the real-gdb tests of `rrx gdb`, built with -O0 -g so gdb has line
   information. A global counter written by bump(), called from compute() in a loop; PIT ticks
   (1 kHz) wake the hlt between rounds; COM1 receive interrupts add up the bytes typed.
   Build: make -C test/gdb/kernel (the ELF is committed). */
#include "../../../fixtures/rt/rt.h"

#define COM1 0x3F8

volatile u32 counter;
volatile u32 ticks;
volatile u32 rx_count, rx_sum;
u32 history[32];

__attribute__((noinline)) u32 bump(u32 k) {
    u32 c = counter;
    c = c + k;
    counter = c;
    return c;
}

__attribute__((noinline)) u32 compute(u32 n) {
    u32 s = 0;
    for (u32 i = 0; i < n; i++) {
        s += bump(i);
    }
    return s;
}

static struct rt_frame *on_timer(struct rt_frame *f) {
    ticks++;
    rt_pic_eoi(0);
    return f;
}

static struct rt_frame *on_serial(struct rt_frame *f) {
    (void)inb(COM1 + 2);
    while (inb(COM1 + 5) & 1) {
        u8 c = inb(COM1);
        rx_sum += c;
        rx_count++;
    }
    rt_pic_eoi(4);
    return f;
}

int kmain(u32 magic, struct mb_info *mbi) {
    rt_init(magic, mbi);
    rt_idt_init();
    rt_pic_init();
    rt_set_handler(0x20, on_timer);
    rt_set_handler(0x24, on_serial);
    rt_pit_init(1000);
    rt_pic_unmask(0);
    outb(COM1 + 4, 0x0B);
    outb(COM1 + 1, 0x01);
    rt_pic_unmask(4);
    u32 total = 0;
    for (u32 round = 0; round < 24; round++) {
        total += compute(8 + round);
        history[round] = total;
        sti_hlt();
    }
    while (rx_count < 3 && ticks < 200) sti_hlt();
    rt_serial_printf("dbg %x %u\n", total, rx_sum);
    rt_exit(0);
}
