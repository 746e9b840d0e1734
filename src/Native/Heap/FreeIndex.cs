// The free index: a treap of an arena's free blocks, ordered by address, where
// every node also carries a bound on the largest free size in its subtree (as
// Linux's vmalloc tree carries the exact maximum). The lowest-addressed block
// that fits is found by a descent: go left while the left subtree may hold a big
// enough block, else take this node if it fits, else go right. That is exactly the
// block a walk of an address-ordered free list would stop at, in O(log n).
//
// The nodes do not live in the free blocks but packed in arrays of the arena's
// own (32 bytes each), with a copy of the block's address and size: a search
// reads only these dense arrays, which stay in the CPU's caches, instead of
// chasing pointers through free memory the program has not touched in a while.
// A free block keeps its node's index in its first payload word.
//
// Balance: each node gets a random priority when it is made, and parents have
// higher priority than children (a treap), which keeps the expected depth
// logarithmic whatever order blocks are freed in. Because the priority belongs to
// the node, not to the address, a block that takes another's place in the order
// (a free that absorbs its upper neighbour, a realloc that eats into it) just
// takes over its node: no rotations.
//
// The bound is an *upper* bound, kept lazily: when a block shrinks (every
// allocation carves the top of one) only its own size is updated, so the bounds
// above it may be too high. A search that follows a too-high bound into a subtree
// without a fit comes back out and tightens that subtree's bound on the way, so
// each stale bound costs one detour, once. Growth raises the bounds on its path
// at once, so a bound is never too low, and the search never misses.

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Konfiscator.Native.Platform;

namespace Konfiscator.Native.Heap
{
    [StructLayout(LayoutKind.Sequential)]
    internal unsafe struct Node
    {
        public Block* Block;
        public uint Size;        // the block's size in units (a copy, kept in step)
        public uint Bound;       // >= the largest Size in this subtree
        public uint Left, Right; // node indices; 0 is none
        public ulong Priority;
    }

    internal static unsafe class FreeIndex
    {
        private const int ChunkShift = 11;                     // 2048 nodes (64 KiB) a chunk
        private const uint ChunkNodes = 1u << ChunkShift;
        private const int DirectoryChunks = 4096;              // up to 8M free blocks an arena

        // ---- nodes ----

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static Node* At(Arena* a, uint i) => a->NodeChunks[i >> ChunkShift] + (i & (ChunkNodes - 1));

        /// <summary>The node index a free block keeps in its first payload word.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public static uint IndexOf(Block* b) => *(uint*)Blocks.Payload(b);

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static uint BoundOf(Arena* a, uint i) => i == 0 ? 0 : At(a, i)->Bound;

        /// <summary>Recomputes a node's bound from its own size and its children's bounds.</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        private static void Refresh(Arena* a, Node* n)
        {
            uint max = n->Size;
            uint l = BoundOf(a, n->Left), r = BoundOf(a, n->Right);
            if (l > max) max = l;
            if (r > max) max = r;
            n->Bound = max;
        }

        private static uint NewNode(Arena* a, Block* b)
        {
            uint i = a->NodeFree;
            if (i != 0)
            {
                a->NodeFree = At(a, i)->Left;
            }
            else
            {
                i = ++a->NodeCount;
                uint chunk = i >> ChunkShift;
                if (a->NodeChunks == null)
                {
                    a->NodeChunks = (Node**)OsMemory.Map((nuint)(DirectoryChunks * sizeof(Node*)));
                    if (a->NodeChunks == null) Fatal.Die("out of memory for the free index");
                }
                if (chunk >= DirectoryChunks) Fatal.Die("the free index is full");
                if (a->NodeChunks[chunk] == null)
                {
                    a->NodeChunks[chunk] = (Node*)OsMemory.Map((nuint)(ChunkNodes * (uint)sizeof(Node)));
                    if (a->NodeChunks[chunk] == null) Fatal.Die("out of memory for the free index");
                }
            }
            Node* n = At(a, i);
            n->Block = b;
            n->Size = b->SizeUnits;
            n->Bound = b->SizeUnits;
            n->Left = 0;
            n->Right = 0;
            // A random priority: a hash of the address and a running count, so that
            // even blocks freed again and again at one address get fresh draws.
            ulong x = (ulong)b ^ ((ulong)(++a->NodeDraws) << 47);
            x ^= x >> 31; x *= 0x7FB5D329728EA185; x ^= x >> 27; x *= 0x81DADEF4BC2DD44D; x ^= x >> 33;
            n->Priority = x;
            *(uint*)Blocks.Payload(b) = i;
            return i;
        }

        private static void FreeNode(Arena* a, uint i)
        {
            Node* n = At(a, i);
            n->Block = null;
            n->Left = a->NodeFree;
            a->NodeFree = i;
        }

        // ---- rotations: each keeps the in-order (address) sequence ----

        private static uint RotateRight(Arena* a, uint top)
        {
            Node* t = At(a, top);
            uint li = t->Left;
            Node* l = At(a, li);
            t->Left = l->Right;
            Refresh(a, t);
            l->Right = top;
            Refresh(a, l);
            return li;
        }

        private static uint RotateLeft(Arena* a, uint top)
        {
            Node* t = At(a, top);
            uint ri = t->Right;
            Node* r = At(a, ri);
            t->Right = r->Left;
            Refresh(a, t);
            r->Left = top;
            Refresh(a, r);
            return ri;
        }

        // ---- operations (the arena lock is held) ----

        /// <summary>Adds free block b (its header already says its size).</summary>
        public static void Insert(Arena* a, Block* b) => a->NodeRoot = Insert(a, a->NodeRoot, NewNode(a, b), b);

        private static uint Insert(Arena* a, uint root, uint i, Block* b)
        {
            if (root == 0) return i;
            Node* r = At(a, root);
            if (b < r->Block)
            {
                r->Left = Insert(a, r->Left, i, b);
                if (At(a, r->Left)->Priority > r->Priority) return RotateRight(a, root);
            }
            else
            {
                r->Right = Insert(a, r->Right, i, b);
                if (At(a, r->Right)->Priority > r->Priority) return RotateLeft(a, root);
            }
            Refresh(a, r);
            return root;
        }

        /// <summary>Removes free block b (which must be in the index).</summary>
        public static void Remove(Arena* a, Block* b)
        {
            uint i = IndexOf(b);
            a->NodeRoot = Remove(a, a->NodeRoot, i, b);
            FreeNode(a, i);
        }

        private static uint Remove(Arena* a, uint root, uint i, Block* b)
        {
            Node* r = At(a, root);
            if (root == i) return Join(a, r->Left, r->Right);
            if (b < r->Block) r->Left = Remove(a, r->Left, i, b);
            else r->Right = Remove(a, r->Right, i, b);
            Refresh(a, r);
            return root;
        }

        /// <summary>Joins two subtrees where every address in <paramref name="low"/> is below every one in <paramref name="high"/>.</summary>
        private static uint Join(Arena* a, uint low, uint high)
        {
            if (low == 0) return high;
            if (high == 0) return low;
            Node* l = At(a, low), h = At(a, high);
            if (l->Priority > h->Priority)
            {
                l->Right = Join(a, l->Right, high);
                Refresh(a, l);
                return low;
            }
            h->Left = Join(a, low, h->Left);
            Refresh(a, h);
            return high;
        }

        /// <summary>Free block <paramref name="nw"/> takes over the node of the block whose node is
        /// <paramref name="oldIndex"/> (which leaves the index): nothing else lies between the two
        /// addresses, so the order holds, and the priority is the node's own, so no rotation
        /// is needed. Used when a freed block absorbs its free upper neighbour, and when realloc
        /// grows into one. The caller reads oldIndex before nw's header may overwrite it.</summary>
        public static void Replace(Arena* a, uint oldIndex, Block* nw)
        {
            Node* n = At(a, oldIndex);
            n->Block = nw;
            n->Size = nw->SizeUnits;
            *(uint*)Blocks.Payload(nw) = oldIndex;
            if (n->Size > n->Bound) RaiseBounds(a, nw);
        }

        /// <summary>After b's size changed in place (its address did not): its node's copy
        /// follows; a growth raises the bounds on its path, a shrink needs nothing (see above).</summary>
        public static void Resized(Arena* a, Block* b)
        {
            Node* n = At(a, IndexOf(b));
            uint size = b->SizeUnits;
            bool grew = size > n->Size;
            n->Size = size;
            if (grew) RaiseBounds(a, b);
        }

        private static void RaiseBounds(Arena* a, Block* b)
        {
            uint size = b->SizeUnits;
            for (uint i = a->NodeRoot; i != 0; )
            {
                Node* n = At(a, i);
                if (n->Bound < size) n->Bound = size;
                if (n->Block == b) return;
                i = b < n->Block ? n->Left : n->Right;
            }
        }

        /// <summary>The lowest-addressed block of at least <paramref name="units"/>, or null.
        /// Tightens every bound that led it astray.</summary>
        public static Block* FirstFit(Arena* a, uint units)
        {
            uint i = FirstFit(a, a->NodeRoot, units);
            return i == 0 ? null : At(a, i)->Block;
        }

        private static uint FirstFit(Arena* a, uint i, uint units)
        {
            if (i == 0) return 0;
            Node* n = At(a, i);
            if (n->Bound < units) return 0;
            if (n->Left != 0 && At(a, n->Left)->Bound >= units)
            {
                uint found = FirstFit(a, n->Left, units);
                if (found != 0) return found;
            }
            if (n->Size >= units) return i;
            if (n->Right != 0 && At(a, n->Right)->Bound >= units)
            {
                uint found = FirstFit(a, n->Right, units);
                if (found != 0) return found;
            }
            // Nothing here fits: the bound was stale. The children's bounds are now
            // below units, so recomputing from them tightens this one.
            Refresh(a, n);
            return 0;
        }

        /// <summary>The lowest-addressed block above <paramref name="after"/> of at least <paramref name="units"/>, or null.</summary>
        public static Block* FirstFitAbove(Arena* a, uint units, Block* after)
        {
            uint i = FirstFitAbove(a, a->NodeRoot, units, after);
            return i == 0 ? null : At(a, i)->Block;
        }

        private static uint FirstFitAbove(Arena* a, uint i, uint units, Block* after)
        {
            if (i == 0) return 0;
            Node* n = At(a, i);
            if (n->Bound < units) return 0;
            if (n->Block > after)
            {
                uint found = FirstFitAbove(a, n->Left, units, after);
                if (found != 0) return found;
                if (n->Size >= units) return i;
            }
            return FirstFitAbove(a, n->Right, units, after);
        }

        /// <summary>The largest free size in the index, exactly: a branch-and-bound walk
        /// that skips every subtree whose bound cannot beat the best size found so far,
        /// and tightens the bounds it passes.</summary>
        public static uint Largest(Arena* a)
        {
            uint best = 0;
            TightenAbove(a, a->NodeRoot, ref best);
            return best;
        }

        private static void TightenAbove(Arena* a, uint i, ref uint best)
        {
            if (i == 0) return;
            Node* n = At(a, i);
            if (n->Bound <= best) return;
            if (n->Size > best) best = n->Size;
            // The child with the higher bound first: it is the likelier home of the maximum.
            if (BoundOf(a, n->Left) >= BoundOf(a, n->Right)) { TightenAbove(a, n->Left, ref best); TightenAbove(a, n->Right, ref best); }
            else { TightenAbove(a, n->Right, ref best); TightenAbove(a, n->Left, ref best); }
            Refresh(a, n);
        }

        /// <summary>True if b is in the index where an address search finds it (heap check).</summary>
        public static bool Contains(Arena* a, Block* b)
        {
            for (uint i = a->NodeRoot; i != 0; )
            {
                Node* n = At(a, i);
                if (n->Block == b) return true;
                i = b < n->Block ? n->Left : n->Right;
            }
            return false;
        }
    }
}
